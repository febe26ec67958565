"""The dsaas policy pack: assembles the rules; each rule lives in `dsaas_guardrails/`."""

from pulumi_policy import EnforcementLevel, PolicyPack

from dsaas_guardrails import PACK_NAME, POLICIES, secrecy

# Validators must see which properties the engine sent as secrets (see secrecy.py).
secrecy.install()

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
