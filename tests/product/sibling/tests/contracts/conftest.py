"""The sibling's contract suite: the toolkit's conformance kit, registered as a plugin."""

pytest_plugins = ["market_data_contracts.kit.plugin"]
