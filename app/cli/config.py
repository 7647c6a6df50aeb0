"""`arca config show`: the effective server configuration, secrets masked, with where each value
came from (environment, the ARCA_CONFIG file, a NAME_FILE file, or the default)."""

from __future__ import annotations

import argparse
import json
import sys

from app.config import CONFIG_VARIABLE, effective_settings, environment, settings_from_env


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="arca config", description="Arca's server configuration.")
    sub = p.add_subparsers(dest="cmd", required=True)
    show = sub.add_parser("show", help="print the effective configuration, secrets masked, and where each value "
                                       "comes from (a bad setting is reported as `arca serve` would)")
    show.add_argument("--output", choices=["text", "json"], default="text")
    args = p.parse_args(argv)

    env = environment()
    settings_from_env(env)  # checks every setting: one that Arca cannot use is a one-line error
    rows = effective_settings(env)
    if args.output == "json":
        print(json.dumps({"configFile": env.config_path, "settings": rows}, indent=4))
        return 0
    layers = f"the environment over {CONFIG_VARIABLE}={env.config_path}" if env.config_path else "the environment"
    sys.stdout.write(f"# from {layers}; NAME_FILE reads NAME from a file; the environment wins\n")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        value = "(unset)" if r["value"] is None else r["value"]
        sys.stdout.write(f"{r['name']:<{width}}  {value}  [{r['source']}]\n")
    return 0
