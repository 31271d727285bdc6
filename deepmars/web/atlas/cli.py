"""``python atlas.py [serve|upgrade] key=value ...`` and its exit codes (deepmars/cli.py).

serve (default): check the catalog (read-only; a missing, foreign, locked or older-schema catalog
is a message and exit 4), print the address and serve until Ctrl-C (exit 0).
upgrade: open the catalog writable once, which migrates it in place to the current schema.
"""

from __future__ import annotations

from collections.abc import Mapping

from deepmars import cli
from deepmars.cli import EXIT_OK
from deepmars.web.atlas.options import COMMANDS, AtlasOptions, atlas_options
from deepmars.web.database import check_catalog


def main(cfg: Mapping) -> int:
    return cli.guarded(_dispatch, cfg, "the Atlas stopped; the catalog was only read")


def positional_command(argv: list[str]) -> list[str]:
    return cli.positional_command(argv, COMMANDS)


usage_exit_codes = cli.usage_exit_codes


def upgrade_hint(opts: AtlasOptions) -> str:
    return f"python atlas.py upgrade catalog={opts.web.catalog}"


def _dispatch(cfg: Mapping) -> int:
    opts = atlas_options(cfg)
    if opts.command == "upgrade":
        return _upgrade(opts)
    if opts.demo:
        from deepmars.web.atlas.demo import build_demo

        build_demo(opts)
    check_catalog(opts.web.catalog, opts.web.lock_timeout_s, upgrade_hint(opts))
    from deepmars.web.atlas.app import create_atlas_app
    from deepmars.web.server import check_port, serve

    check_port(opts.web.host, opts.web.port)  # before the app opens its connections
    serve(create_atlas_app(opts), opts.web, "Atlas")
    return EXIT_OK


def _upgrade(opts: AtlasOptions) -> int:
    from deepmars.catalog import SCHEMA_VERSION, Catalog

    with Catalog.open(opts.web.catalog, create=False):
        pass
    print(f"{opts.web.catalog} is at catalog schema {SCHEMA_VERSION}; serve it with "
          f"python atlas.py catalog={opts.web.catalog}")
    return EXIT_OK
