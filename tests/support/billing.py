"""The contract's billing figures the tests expect, written once (contract 3): literal values,
not read from the package, so a wrong default in the code fails the tests."""

DEMO_CREDITS = 15_000  # the embedded demo account
SMS_CREDITS = 15  # `[pricing]`: what one French SMS costs by default
