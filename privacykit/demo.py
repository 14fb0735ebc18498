"""`make demo`: start the embedded sandbox, seed it, and run the main job against it.

Placeholder until the erasure issue lands (its owner replaces this module)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("demo not yet available")


if __name__ == "__main__":
    main()
