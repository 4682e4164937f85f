"""Root pytest configuration: what every test folder shares."""
