"""The live loop and the scheduler that wire the stages together."""
