"""The people of the simulated call center: extensions, Vietnamese names, phones."""

from __future__ import annotations

import random
import unicodedata
import uuid
from dataclasses import dataclass

SUPERVISOR_EXT = "999"
FIRST_EXT = 1001
GROUP_SIZE = 10

_FAMILY = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
    "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý",
)  # fmt: skip
_MIDDLE = (
    "Văn", "Thị", "Minh", "Ngọc", "Thanh", "Hữu", "Đức", "Thu", "Quốc", "Gia", "Bảo", "Hoài",
)  # fmt: skip
_GIVEN = (
    "An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng",
    "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Minh", "Nam", "Nga", "Ngân", "Nhung",
    "Phong", "Phúc", "Phương", "Quân", "Quang", "Sơn", "Tâm", "Thảo", "Thắng", "Trang",
    "Trinh", "Tú", "Tuấn", "Uyên", "Vân", "Việt", "Vy", "Yến",
)  # fmt: skip
_USER_AGENTS = (
    "MicroSIP/3.21.3", "MicroSIP/3.20.6", "Zoiper rv2.10.19.8", "Linphone/5.2.0",
    "Yealink SIP-T46S 66.86.0.15", "Grandstream GXP1625 1.0.11.23", "Bria 6.5.3",
    "Tel4vn Softphone/2.4.1",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Person:
    ext: str
    name: str
    username: str
    user_agent: str
    ip: str
    user_id: str
    extension_id: str
    group: int


def make_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ascii_fold(text: str) -> str:
    # "đ" has no decomposition, so NFD alone would keep it.
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def build_roster(agents: int, rng: random.Random) -> list[Person]:
    """The supervisors' phone 999, then 1001..1000+agents, all drawn from `rng`."""
    people = [
        Person(
            ext=SUPERVISOR_EXT,
            name="Supervisor",
            username="supervisor",
            user_agent="Yealink SIP-T58A 58.86.0.20",
            ip="10.0.0.9",
            user_id=make_uuid(rng),
            extension_id=make_uuid(rng),
            group=-1,
        )
    ]
    for index in range(agents):
        people.append(make_person(str(FIRST_EXT + index), index, rng))
    return people


def make_person(ext: str, index: int, rng: random.Random) -> Person:
    """The `index`-th agent of a roster (its team is index // GROUP_SIZE)."""
    family, middle, given = rng.choice(_FAMILY), rng.choice(_MIDDLE), rng.choice(_GIVEN)
    username = f"{ascii_fold(given).lower()}.{ascii_fold(family).lower()}{ext}"
    if rng.random() < 0.8:
        ip = f"10.{index // 60000 + 10}.{index // 250 % 240}.{index % 250 + 2}"
    else:
        ip = f"113.161.{rng.randrange(1, 255)}.{rng.randrange(2, 255)}"
    return Person(
        ext=ext,
        name=f"{family} {middle} {given}",
        username=username,
        user_agent=rng.choice(_USER_AGENTS),
        ip=ip,
        user_id=make_uuid(rng),
        extension_id=make_uuid(rng),
        group=index // GROUP_SIZE,
    )
