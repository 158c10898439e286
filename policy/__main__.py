"""labstack's policy pack: the rules of rules.py wired into pulumi_policy, mandatory ones stopping `pulumi up`, advisory
ones warning. Run by `pulumi up --policy-pack policy` (what `invoke up` does); settings such as the allow-lists come
from `--policy-pack-config policy/config.json` (README, "Policies")."""
from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy,
                           StackValidationPolicy)

from rules import RULES, Resource, Rule


def _config_schema(rule: Rule):
    if not rule.settings:
        return None
    return PolicyConfigSchema(properties={key: _setting_schema(setting) for key, setting in rule.settings.items()})


def _setting_schema(setting) -> dict:
    if isinstance(setting.default, float):
        return {"type": "number", "default": setting.default, "description": setting.description}
    return {"type": "array", "items": {"type": "string"}, "default": list(setting.default),
            "description": setting.description}


def _stack_resources(policy_resources) -> list[Resource]:
    """The stack's resources as rules.py sees them, plus the providers they use (the engine may list a default
    provider only as a resource's provider)."""
    found = {}
    for r in policy_resources:
        found[r.urn] = Resource(r.resource_type, r.name, r.props,
                                {key: [d.name for d in deps] for key, deps in r.property_dependencies.items()})
        if r.provider is not None:
            found.setdefault(r.provider.urn, Resource(r.provider.resource_type, r.provider.name, r.provider.props))
    return list(found.values())


def _policy(rule: Rule):
    level = EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY
    if rule.on_stack:
        def validate_stack(args, report_violation):
            for message in rule.check(_stack_resources(args.resources), **rule.settings_from(args.get_config())):
                report_violation(message, None)

        return StackValidationPolicy(name=rule.name, description=rule.description, enforcement_level=level,
                                     config_schema=_config_schema(rule), validate=validate_stack)

    def validate_resource(args, report_violation):
        for message in rule.check(args.resource_type, args.name, args.props, **rule.settings_from(args.get_config())):
            report_violation(message, None)

    return ResourceValidationPolicy(name=rule.name, description=rule.description, enforcement_level=level,
                                    config_schema=_config_schema(rule), validate=validate_resource)


PolicyPack(name="labstack", policies=[_policy(rule) for rule in RULES])
