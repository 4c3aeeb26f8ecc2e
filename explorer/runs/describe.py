"""One-line descriptions of runs, shared by the CLI, the Runs page and the notebooks."""
from __future__ import annotations


def describe_model(config: dict | None) -> str:
    """"cnn13 K=32 relu", "sle J=2 L=8 widths=[512, 512]", … from a run's configuration: its model's
    registry entry says it (a model no longer registered: just its name)."""
    if not config:
        return "?"
    from explorer.nets import registry  # here: listing runs needs no network until one is described

    if not isinstance(config, dict):
        return "?"
    try:
        spec = registry.get(config.get("model"))
    except ValueError:
        return str(config.get("model"))[:40]
    model_config = config.get("model_config", {})
    try:
        return spec.describe(model_config if isinstance(model_config, dict) else {})
    except Exception:  # noqa: BLE001 (a hand-made configuration: the listing must still show the run)
        return f"{spec.name} (unreadable options)"
