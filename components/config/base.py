"""The base of every map in the stack file: frozen, camelCase keys, unknown keys refused with a hint, and every problem
reported at once, each as one of our own problems (never pydantic's wording).

Pydantic skips a model's cross-field checks as soon as one field fails, and stops at the first check that raises.
We want every problem in one go, and each bad value named once, so cross-field rules are methods marked with
`@rule(<fields it reads>)`, run by the model's wrap validator: when fields failed, the model is validated again
without them, and only the rules that read none of them run. A rule therefore never sees a value that failed, and
never repeats a problem a field already reported.
"""
from __future__ import annotations

import difflib
from typing import Any, Callable, ClassVar, Iterable, Optional

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components.config.values import Shown, problem

Detail = dict[str, Any]  # one error as ValidationError.from_exception_data takes it: type, loc, input


def rule(*reads: str) -> Callable:
    """Mark a cross-field rule and the fields it reads; it returns the problems it finds (see `Settings.at`)."""
    def mark(method: Callable) -> Callable:
        method.reads = frozenset(reads)
        return method
    return mark


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, validate_by_alias=True,
                              validate_by_name=False, defer_build=True)

    unknown_setting: ClassVar[str] = "unknown setting"  # how the fix calls an unknown key at this level
    shape_fix: ClassVar[str] = "expected a map of settings"  # for a value that is not a map, or lacks a setting
    missing_fix: ClassVar[dict[str, str]] = {}  # field -> its own line when that required setting is missing
    tagged_unions: ClassVar[frozenset[str]] = frozenset()  # keys whose errors carry a union tag to drop

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: Callable, info: ValidationInfo) -> Any:
        data = cls.own_keys(data)
        try:
            model = handler(data)
        except ValidationError as error:
            failed = {e["loc"][0] for e in error.errors() if e["loc"]}
            problems = cls._explain(error, data)
            try:
                model = handler({key: value for key, value in data.items() if key not in failed})
            except ValidationError:  # a required setting failed: no rule can run without it
                raise ValidationError.from_exception_data(cls.__name__, problems) from None
            problems += model._rule_problems(failed, info.context or {})
            raise ValidationError.from_exception_data(cls.__name__, problems) from None
        problems = model._rule_problems(set(), info.context or {})
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return model

    @classmethod
    def own_keys(cls, data: Any) -> dict:
        """The keys this model judges; anything but a map is refused with the shape fix."""
        if not isinstance(data, dict):
            raise problem(cls.shape_fix)
        return data

    @classmethod
    def setting_keys(cls) -> list[str]:
        return [field.alias or name for name, field in cls.model_fields.items()]

    @classmethod
    def close_match(cls, key: str) -> Optional[str]:
        """The known key a mistyped one most likely meant, ignoring case and the `labstack:` namespace."""
        def bare(name: str) -> str:
            return name.rpartition(":")[2].lower()
        known = {bare(name): name for name in cls.setting_keys()}
        found = difflib.get_close_matches(bare(key), list(known), n=1, cutoff=0.75)
        return known[found[0]] if found else None

    @classmethod
    def unknown_fix(cls, hint: Optional[str]) -> str:
        known = ", ".join(sorted(cls.setting_keys()))
        return f"{cls.unknown_setting}; " + (f"did you mean {hint}?" if hint else f"known: {known}")

    @classmethod
    def _explain(cls, error: ValidationError, data: dict) -> list[Detail]:
        """pydantic's own errors at this level become our problems; deeper ones were explained by their model."""
        fields = {field.alias or name: (name, field) for name, field in cls.model_fields.items()}
        errors = error.errors()
        hints = {e["loc"][0]: cls.close_match(str(e["loc"][0]))
                 for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1}
        problems: list[Detail] = []
        for e in errors:
            loc, kind, value = e["loc"], e["type"], e["input"]
            if len(loc) > 1 and loc[0] in cls.tagged_unions:
                loc = loc[:1] + loc[2:]  # ("postDeploy", "request", "path") names the key postDeploy.path
            if kind == "extra_forbidden" and len(loc) == 1:
                error_type = problem(cls.unknown_fix(hints[loc[0]]))
            elif kind == "missing" and len(loc) == 1:
                if loc[0] in hints.values():
                    continue  # its misspelling is reported, with this key as the hint
                line = cls.missing_fix.get(fields[loc[0]][0])
                loc, value, error_type = (loc, data, problem(line=line)) if line else ((), data, problem(cls.shape_fix))
            elif kind == "labstack":
                context = dict(e["ctx"])
                if len(loc) == 1 and loc[0] in fields:  # a field's own fix may quote its default
                    default = fields[loc[0]][1].default
                    shown = context.get("example") if default is None or isinstance(default, Shown) else default
                    context["fix"] = context["fix"].replace("{default}", str(shown))
                error_type = PydanticCustomError("labstack", "{fix}", context)
            else:  # a shape no value type of ours lets through; still our words, never pydantic's
                error_type = problem("not a valid value here; see docs/configuration.md")
            problems.append({"type": error_type, "loc": loc, "input": value})
        return problems

    def _rule_problems(self, failed: set, context: dict) -> list[Detail]:
        fields = type(self).model_fields
        failed_fields = {name for name, field in fields.items() if (field.alias or name) in failed}
        problems: list[Detail] = []
        members = [member for klass in reversed(type(self).__mro__) for member in vars(klass).values()]
        for member in members:
            reads = getattr(getattr(member, "__func__", member), "reads", None)
            if reads is not None and not reads & failed_fields:
                problems.extend(member(self, context))
        return problems

    def at(self, field: str, value: Any, error: PydanticCustomError, *below: str) -> Detail:
        """A rule's problem, named by a field's key (and keys below it)."""
        return {"type": error, "loc": (type(self).model_fields[field].alias or field, *below), "input": value}

    def given(self, *fields: str) -> Iterable[str]:
        """Those of `fields` the stack file sets."""
        return [name for name in fields if name in self.model_fields_set]
