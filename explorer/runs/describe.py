"""One-line descriptions of runs, shared by the CLI, the Runs page and the notebooks."""
from __future__ import annotations


def describe_model(config: dict | None) -> str:
    """"cnn13 K=32 relu", "sle J=2 L=8 widths=[512, 512]", … from a run's configuration."""
    if not config:
        return "?"
    mc = config.get("model_config", {})
    if config.get("model") == "cnn13":
        rho = mc.get("rho")
        if rho == "relu_k":
            rho = f"relu_k α={mc.get('alpha')}"
        return f"cnn13 K={mc.get('width')} {rho}"
    if config.get("model") == "sle":
        return f"sle J={mc.get('J')} L={mc.get('L')} widths={mc.get('widths')}"
    return str(config.get("model"))
