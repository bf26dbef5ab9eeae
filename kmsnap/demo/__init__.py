"""The demo scenario: an emulator, a pull, a change, a diff, a check."""
