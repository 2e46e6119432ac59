"""The pydantic building blocks every concern's settings model is made of.

Each type carries the message an operator sees when a value does not fit, so every concern
refuses bad data in the same words. Values are checked strictly: ``"3"`` is not a number,
``"yes"`` is not a bool, and patterns match the whole string (no trailing newline).
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, WrapValidator
from pydantic.json_schema import JsonDict
from pydantic_core import PydanticCustomError, core_schema

if TYPE_CHECKING:
    from pyinfra.api.host import Host

    from .settings import Problem


# Control, format (zero-width, direction marks), private-use, unassigned and line/paragraph
# separator characters: none belongs in a setting, and each can add a line or hide a difference.
UNSAFE_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}


def unsafe_character(value: Any) -> str | None:
    """The first character in ``value`` (a string, or any string inside lists and dicts) that no
    setting may hold, described; None if there is none. Spaces other than U+0020 count too."""
    if isinstance(value, str):
        for character in value:
            category = unicodedata.category(character)
            if category in UNSAFE_CATEGORIES or (category == "Zs" and character != " "):
                name = unicodedata.name(character, "a control character")
                return f"U+{ord(character):04X} ({name.lower()})"
        return None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple, set)):
        for item in value:
            found = unsafe_character(item)
            if found:
                return found
    return None


def refuse(key: str, what: str, fix: str) -> PydanticCustomError:
    """An error for a rule across keys: ``key`` is the one named, ``fix`` says what to do."""
    return PydanticCustomError("hardening_rule", "{what}", {"key": key, "what": what, "fix": fix})


@dataclass(frozen=True, eq=False)  # hashed by identity: its schema is a dict, and unions hash their members
class Rule:
    """``Annotated`` metadata: the message for a value that fails validation, in our words, and
    optionally the pydantic-core schema to validate with (else the annotated type's own).
    Errors inside the value (an item of a list, a field of an entry) keep their own words.
    The generated docs list the message as the key's rule."""

    message: str
    schema: Any = None

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        def validate(value: Any, inner: Any) -> Any:
            try:
                return inner(value)
            except ValidationError as error:
                if any(item["loc"] for item in error.errors()):
                    raise
                raise PydanticCustomError("hardening", self.message) from None

        return core_schema.no_info_wrap_validator_function(validate, self.schema or handler(source))


def described(message: str) -> Rule:
    """For ``Annotated[T, ..., described("must be ...")]``: pydantic's check of T, our message."""
    return Rule(message)


def whole_number(low: int, high: int) -> Rule:
    """For ``Annotated[int, whole_number(1, 10)]``: an int (not a bool or a string) in range."""
    return Rule(f"must be a whole number from {low} to {high}", core_schema.int_schema(strict=True, ge=low, le=high))


def one_of(*choices: str) -> Rule:
    """For ``Annotated[str, one_of("a", "b")]``: exactly one of ``choices``."""
    return Rule(f"must be one of {', '.join(map(repr, choices))}", core_schema.literal_schema(list(choices)))


def parsed_by(parse: Callable[[str], object], what: str) -> WrapValidator:
    """A string that ``parse`` (one of ipaddress's) accepts, normalised; else refused as not ``what``."""

    def validate(value: Any, _handler: Any) -> str:
        try:
            return str(parse(value if isinstance(value, str) else ""))
        except ValueError as error:
            raise ValueError(f"{value!r} is not {what} ({error})") from None

    return WrapValidator(validate)


Flag = Annotated[bool, described("must be True or False (a Python bool, unquoted)")]
Port = Annotated[int, whole_number(1, 65535)]
LoginName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$"),
    described("must be a lowercase login name: a letter or _, then up to 31 of a-z 0-9 _ -"),
]
LoginNames = Annotated[list[LoginName], described("must be a list of lowercase login or group names")]
SqlName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_]{1,32}$"),
    described("must be 1 to 32 of A-Z a-z 0-9 _"),
]
ClockTime = Annotated[
    str,
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    described("must be a time of day as 'HH:MM' (24-hour clock), like '00:01'"),
]
Email = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$"),
    described("must be an email address like ops@example.com (or None)"),
]
HostName = Annotated[
    str,
    StringConstraints(
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$|^[0-9A-Fa-f:.]+$",
        max_length=253,
    ),
    described("must be a host name or IP address like smtp.example.com (or None)"),
]
# A login at a mail server: anything Monit can quote (no spaces, quotes or backslashes).
MailLogin = Annotated[
    str,
    StringConstraints(pattern=r"^[!#-\[\]-~]{1,128}$"),
    described("must be a user name of printable ASCII without spaces, quotes or backslashes (or None)"),
]
FilePath = Annotated[
    str, StringConstraints(min_length=1, max_length=4096), described("must be a file path (a string) or None")
]
# Folders a service owning them (mode 700) would break or take over.
SYSTEM_DIRECTORIES = frozenset(
    f"/{path}"
    for path in (
        "bin boot dev etc home lib lib64 media mnt opt proc root run sbin srv sys tmp usr var "
        "usr/bin usr/lib usr/lib64 usr/libexec usr/sbin usr/share usr/src usr/local usr/local/bin usr/local/etc "
        "usr/local/include usr/local/lib usr/local/sbin usr/local/share usr/local/src var/backups var/cache "
        "var/lib var/local var/lock var/log var/mail var/opt var/run var/spool var/tmp var/www"
    ).split()
)


def _remote_directory(value: Any, handler: Any) -> str:
    path = handler(value)
    if any(part in (".", "..") for part in path.split("/")):
        raise ValueError("has a . or .. segment; write the folder's own path")
    if path.rstrip("/") in SYSTEM_DIRECTORIES or path.startswith(("/etc/", "/proc/", "/sys/", "/dev/", "/run/")):
        raise ValueError("is a system folder (or inside /etc, /proc, /sys, /dev or /run), which the service would own")
    return path


RemoteDirectory = Annotated[
    str,
    WrapValidator(_remote_directory),
    StringConstraints(pattern=r"^(/[A-Za-z0-9._-]+)+$", max_length=255),
    described(
        "must be an absolute folder path on the server of A-Z a-z 0-9 . _ - segments, like /srv/app/config, "
        "and no system folder"
    ),
]
IpAddresses = Annotated[
    list[Annotated[str, parsed_by(ipaddress.ip_address, "a single IP address")]],
    described("must be a list of single IP addresses such as ['203.0.113.7']; a network is not a single IP address"),
]
Networks = Annotated[
    list[Annotated[str, parsed_by(ipaddress.ip_network, "a network")]],
    described("must be a list of networks such as ['10.0.0.0/24'], without host bits set"),
]


def documented_in(group: str) -> JsonDict:
    """``json_schema_extra`` of a key documented in another file than the rest of its model's."""
    return {"group": group}


class HostSettings(BaseModel):
    """One concern's settings: a strict, frozen model over the host-data keys it names.

    Keys the model does not name are none of its business (another concern's, pyinfra's, or
    the user's own); the aggregator in ``settings.py`` looks at those.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", arbitrary_types_allowed=True)
    # The concern's title in generated docs, and the group_data file that documents its keys.
    title: ClassVar[str] = ""
    group: ClassVar[str] = "all"

    def problems(self, host: Host) -> list[Problem]:
        """Rules that need more than the values: the secret store, files on the operator's
        machine, the inventory. Called once the values themselves are valid."""
        return []
