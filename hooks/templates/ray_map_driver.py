"""The driver of the one Ray job that labstack.map (labstack/parallel.py) submits to a cluster: every call becomes a
Ray task, run by function_runner.call exactly as a function job runs it, and each result is printed as one line of
the job's log as its task ends (`<marker> <json>`), which the caller reads through Ray's job client.

The first call that raises ends the job: the other tasks are cancelled and the driver exits 1, so nothing keeps
running for a map that has already failed. Standard library and Ray only, plus the caller's cloudpickle and
function_runner.py beside this file (the job's working_dir, which Ray unpacks on every node).
"""
import base64
import json
import os
import pickle
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # the caller's cloudpickle and function_runner

import function_runner  # noqa: E402


def emit(marker, index, fields, pickled=None):
    record = dict(fields, index=index, python=sys.version.split()[0])
    if pickled is not None:
        record["pickled"] = base64.b64encode(pickled).decode()
    print(marker + " " + json.dumps(record), flush=True)


def run_call(payload):
    """One call, in a Ray worker (its working directory is this job's working_dir on that node)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    import function_runner as runner

    return runner.call(payload)


def main():
    with open(os.path.join(HERE, "map.json")) as spec_file:
        spec = json.load(spec_file)
    marker = spec["marker"]
    message = function_runner.version_problem(spec)
    if message:
        emit(marker, None, dict(status="refused", message=message))
        return 3
    with open(os.path.join(HERE, "calls.pkl"), "rb") as calls_file:
        payloads = pickle.load(calls_file)  # a list of bytes: each call cloudpickled on its own

    import ray

    ray.init(logging_level="ERROR")
    # max_retries=0: a call runs at most once, as on a server (a retried call could repeat a side effect).
    task = ray.remote(num_cpus=spec["cpus"], max_retries=0)(run_call)
    index_of = {task.remote(payload): index for index, payload in enumerate(payloads)}
    pending = list(index_of)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            try:
                fields, pickled = ray.get(ref)
            except Exception as error:  # the worker itself died (out of memory, node lost): no result of the call
                fields, pickled = dict(status="lost", message="%s: %s" % (type(error).__name__, error)), None
            emit(marker, index_of[ref], fields, pickled)
            if fields["status"] != "returned":
                for other in pending:
                    ray.cancel(other, force=True)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
