"""Why a resolution failed; every one leaves the last good resolution in force."""

from __future__ import annotations

from collections.abc import Sequence


class ResolutionError(RuntimeError):
    """The watchlist's sources could not be resolved; nothing was changed."""


class UnknownGroupError(ResolutionError):
    """A `futu_groups:` entry names no group of the account logged in to OpenD."""

    def __init__(self, group: str, gateway: str, existing: Sequence[str]) -> None:
        self.group = group
        self.existing = tuple(existing)
        listed = ", ".join(repr(name) for name in existing) or "none"
        super().__init__(
            f"futu_groups: no watchlist group {group!r} in the account of OpenD at {gateway}; its groups are {listed}"
        )


class UnknownPlateError(ResolutionError):
    """A `plates:` entry the gateway does not know."""

    def __init__(self, plate: str, gateway: str, ret_msg: str, plate_format: str) -> None:
        self.plate = plate
        super().__init__(
            f"plates: OpenD at {gateway} has no plate {plate!r} ({ret_msg}); plates are written {plate_format}"
        )


class GatewayResolutionError(ResolutionError):
    """OpenD could not answer: unreachable, not logged in, or refusing the request."""


class ShrinkRefusedError(ResolutionError):
    """The resolution would drop more than half of the current watchlist."""

    def __init__(self, leaving: int, current: int, sample: Sequence[str]) -> None:
        self.leaving = leaving
        self.current = current
        shown = ", ".join(sample)
        super().__init__(
            f"the resolved watchlist would drop {leaving} of its {current} codes (more than half; e.g. {shown}): "
            "refused, the current watchlist stays; check the groups, plates and markets, or pass --allow-shrink"
        )
