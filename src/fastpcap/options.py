"""The bucket options: everything that changes the rows of a capture, checked once.

:class:`BucketSpec` is the one home of their names, defaults and rules.  The API functions
take the options as keyword arguments (or a ``spec=``) and build one; the command line maps
its ``ValueError``/``TypeError`` onto usage errors; :class:`~fastpcap.Bucketer` and the
worker processes take it as it is; the archive runner's manifest records
:meth:`BucketSpec.to_dict`.  This module imports nothing heavy, so the command line can
check its arguments before numpy is loaded.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypedDict, Union

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
#: Largest ``bucket_ms`` accepted: keeps every bucket index product inside int64.
MAX_BUCKET_MS = 1 << 40
#: The decodes: the reference collector's, and the extended one (docs/data-model.md).
DECODES = ("reference", "extended")
#: How bytes are counted: the captured length (the reference's) or the original length.
SIZES = ("captured", "wire")
#: Which packet a tunnelled packet counts as: the outer one (the default), or the innermost
#: (the extended decode only; docs/data-model.md, "Tunnels").
TUNNELS = ("outer", "inner")
#: What a corrupt record does: fail the run (the default), end the reading there, or skip
#: to the next plausible record (docs/data-model.md, "Corrupt records").
ON_CORRUPT = ("error", "stop", "resync")

Seconds = Union[int, float, str, Decimal, None]


class BucketOptions(TypedDict, total=False):
    """The keyword arguments that make a :class:`BucketSpec` (for type checkers)."""

    bucket_ms: int
    bridge_ip: str
    t_mono_origin_ns: int
    max_gap_s: Seconds
    host_ips: Any  # a sequence of address strings, or None
    size: str
    decode: str
    on_corrupt: str
    tunnels: str


@dataclass(frozen=True)
class BucketSpec:
    """The options that change rows (docs/data-model.md), validated when it is made.

    ``bucket_ms``: bucket width in milliseconds (1 to 2**40).  ``bridge_ip``: the IPv4
    address whose packets count as "out".  ``t_mono_origin_ns``: subtracted from each
    bucket's start to give ``t_mono_ns`` (an int64).  ``max_gap_s``: the gap cap in seconds
    (``None``, ``"none"`` or infinity: no cap).  ``host_ips``: addresses (IPv4 or IPv6) whose
    packets count as "out", instead of ``bridge_ip``.  ``size``: bytes as ``"captured"`` or
    as on the ``"wire"``.  ``decode``: ``"reference"`` or ``"extended"``.  ``tunnels``:
    ``"outer"`` (count a tunnel's outer packet) or ``"inner"`` (the innermost packet; with
    ``decode="extended"`` only).  ``on_corrupt``:
    what a corrupt record does, ``"error"``, ``"stop"`` or ``"resync"`` (a reading policy, like
    ``decode`` handed to the reader; here because it changes rows).

    Values are kept in a canonical form (addresses as :mod:`ipaddress` spells them, the gap
    cap as a :class:`~decimal.Decimal`), so equal options make equal specs.  Raises
    ``ValueError`` (or ``TypeError`` for a value of the wrong type) naming the option.
    """

    bucket_ms: int = 100
    bridge_ip: str = "10.200.0.1"
    t_mono_origin_ns: int = 0
    max_gap_s: Seconds = 3600  # kept as an exact Decimal (None: no cap)
    host_ips: tuple[str, ...] | None = None
    size: str = "captured"
    decode: str = "reference"
    on_corrupt: str = "error"
    tunnels: str = "outer"

    def __post_init__(self) -> None:
        canonical = {
            "bucket_ms": _bucket_ms(self.bucket_ms),
            "bridge_ip": _ipv4(self.bridge_ip),
            "t_mono_origin_ns": _int64("t_mono_origin_ns", self.t_mono_origin_ns),
            "max_gap_s": _seconds(self.max_gap_s),
            "host_ips": _hosts(self.host_ips),
            "size": _choice("size", self.size, SIZES),
            "decode": _choice("decode", self.decode, DECODES),
            "on_corrupt": check_on_corrupt(self.on_corrupt),
            "tunnels": check_tunnels(self.tunnels, self.decode),
        }
        for name, value in canonical.items():
            object.__setattr__(self, name, value)
        if self.decode == "reference" and any(":" in host for host in self.host_ips or ()):
            # The reference decode never sees IPv6: such a host would silently count nothing.
            raise ValueError("host_ips: an IPv6 address needs the extended decode (decode='extended')")

    @classmethod
    def make(cls, spec: BucketSpec | None = None, /, **options: Unpack[BucketOptions]) -> BucketSpec:
        """``spec`` with ``options`` replacing its values (the defaults without ``spec``)."""
        if spec is None:
            return cls(**options)
        if not isinstance(spec, BucketSpec):
            raise TypeError(f"spec must be a BucketSpec, not {type(spec).__name__}")
        return dataclasses.replace(spec, **options) if options else spec

    @property
    def bucket_ns(self) -> int:
        """The bucket width in nanoseconds."""
        return self.bucket_ms * 1_000_000

    @property
    def max_gap_ns(self) -> int | None:
        """The gap cap in whole nanoseconds (``None``: no cap)."""
        if self.max_gap_s is None:
            return None
        return min(int(Decimal(self.max_gap_s) * 1_000_000_000), INT64_MAX)

    def hosts(self) -> tuple[list[int], list[tuple[int, int]]]:
        """The "out" addresses: IPv4 as integers, IPv6 as (high, low) 64-bit halves."""
        addresses = self.host_ips if self.host_ips is not None else (self.bridge_ip,)
        hosts4: list[int] = []
        hosts6: list[tuple[int, int]] = []
        for address in addresses:
            parsed = ipaddress.ip_address(address)
            if parsed.version == 4:
                hosts4.append(int(parsed))
            else:
                hosts6.append((int(parsed) >> 64, int(parsed) & ((1 << 64) - 1)))
        return hosts4, hosts6

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON values (the gap cap in nanoseconds): what a manifest records."""
        values = dataclasses.asdict(self)
        del values["max_gap_s"]
        values["max_gap_ns"] = self.max_gap_ns
        values["host_ips"] = None if self.host_ips is None else list(self.host_ips)
        return values


def _bucket_ms(value: object) -> int:
    if isinstance(value, bool) or not _is_integer(value):
        raise TypeError(f"bucket_ms must be a positive integer, not {value!r}")
    number = int(value)  # type: ignore[call-overload]
    if not 1 <= number <= MAX_BUCKET_MS:
        raise ValueError(f"bucket_ms must be between 1 and {MAX_BUCKET_MS}, not {number}")
    return number


def _int64(name: str, value: object) -> int:
    if isinstance(value, bool) or not _is_integer(value):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    number = int(value)  # type: ignore[call-overload]
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{name} must be a 64-bit signed integer (between {INT64_MIN} and {INT64_MAX}), "
                         f"not {number}")
    return number


def _is_integer(value: object) -> bool:
    # int, or an integer scalar such as numpy's, without importing numpy
    return isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, float))


def _ipv4(value: object) -> str:
    try:
        return str(ipaddress.IPv4Address(value))  # type: ignore[arg-type]
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(f"bridge_ip: not an IPv4 address: {value!r}") from None


def _hosts(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise TypeError("host_ips must be a list of IPv4 or IPv6 addresses, not a string")
    hosts = []
    for address in value:  # type: ignore[attr-defined]
        try:
            hosts.append(str(ipaddress.ip_address(address)))
        except ValueError:
            raise ValueError(f"host_ips: not an IPv4 or IPv6 address: {address!r}") from None
    return tuple(hosts)


def _seconds(value: object) -> Decimal | None:
    """The gap cap as an exact number of seconds; ``None`` for no cap."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    if isinstance(value, bool):
        raise TypeError("max_gap_s must be a number of seconds or None")
    try:
        seconds = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"max_gap_s must be a number of seconds or None, not {value!r}") from None
    if seconds.is_infinite() and seconds > 0:
        return None
    if not seconds.is_finite() or seconds < 0:
        raise ValueError(f"max_gap_s must be a non-negative number of seconds, not {value!r}")
    return seconds


def check_on_corrupt(value: object) -> str:
    """``value`` if it names a corrupt-record policy (``ValueError`` otherwise)."""
    return _choice("on_corrupt", value, ON_CORRUPT)


def check_tunnels(value: object, decode: object) -> str:
    """``value`` if it names a tunnel mode that ``decode`` allows (``ValueError`` otherwise):
    ``"inner"`` needs the extended decode."""
    tunnels = _choice("tunnels", value, TUNNELS)
    if tunnels == "inner" and decode != "extended":
        raise ValueError("tunnels: 'inner' needs the extended decode (decode='extended')")
    return tunnels


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value  # type: ignore[return-value]
