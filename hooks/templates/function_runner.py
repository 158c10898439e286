"""Runs one cloudpickled Python function in a job (sent by labstack/functions.py) and writes out/result.json, plus
out/result.pkl holding the return value or the exception. The Ray driver of labstack.map (ray_map_driver.py) imports
it to run each call the same way.

Order matters: the Python minor version is compared before anything is unpickled (pickled code objects only load
on the minor version that made them), and the requirements are installed before the function's module-level
imports run. Standard library only, plus the caller's own cloudpickle shipped beside this file.
"""
import json
import os
import subprocess
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")


def write(status, **fields):
    with open(os.path.join(OUT, "result.json"), "w") as out:
        json.dump(dict(status=status, python=sys.version.split()[0], **fields), out)


def version_problem(spec):
    """Why pickled code from the caller cannot load here (another Python minor version), or None."""
    have = "%d.%d" % sys.version_info[:2]
    if have == spec["python"]:
        return None
    return ("the image runs Python %s and the caller %s: a cloudpickled function only loads on the same minor "
            "version" % (sys.version.split()[0], spec["python"]))


def call(payload):
    """Unpickle (fn, args, kwargs) with the caller's cloudpickle and call it: (the result.json fields, the pickled
    value or exception, or None when the exception cannot be pickled)."""
    import cloudpickle

    try:
        fn, args, kwargs = cloudpickle.loads(payload)
        value = fn(*args, **kwargs)
    except BaseException as error:  # the caller gets it back: even SystemExit is the function's result
        text = traceback.format_exc()
        sys.stderr.write(text)
        try:
            pickled = cloudpickle.dumps(error)
        except Exception:  # an exception that cannot be pickled still comes back as its type, text and traceback
            pickled = None
        return dict(status="raised", type=type(error).__name__, message=str(error), traceback=text), pickled
    try:
        return dict(status="returned"), cloudpickle.dumps(value)
    except Exception as error:  # e.g. a generator or an open file: the function ran, its value cannot travel
        return dict(status="raised", type=type(error).__name__,
                    message="the return value cannot be pickled: %s" % error,
                    traceback=traceback.format_exc()), None


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(HERE, "function.json")) as spec_file:
        spec = json.load(spec_file)
    message = version_problem(spec)
    if message:
        print("labstack: refused: " + message, file=sys.stderr)
        write("refused", message=message)
        return 3
    if spec["pip"]:
        print("labstack: pip install " + " ".join(spec["pip"]), file=sys.stderr)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                               "--quiet", *spec["pip"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stderr.write(done.stdout)
        if done.returncode != 0:
            write("pip-failed", message=done.stdout.strip()[-2000:])
            return 4
    sys.path.insert(0, HERE)  # the caller's cloudpickle
    with open(os.path.join(HERE, "function.pkl"), "rb") as payload:
        fields, pickled = call(payload.read())
    if pickled is not None:
        with open(os.path.join(OUT, "result.pkl"), "wb") as out:
            out.write(pickled)
    write(**fields)
    return 0 if fields["status"] == "returned" else 1


if __name__ == "__main__":
    sys.exit(main())
