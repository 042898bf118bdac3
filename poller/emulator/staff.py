"""The emulated portal's people and departments, as `user.get` and `department.get` answer them.

Pure functions of the user id and the portal's size, so a test can ask for the truth. Some
rows are odd on purpose: every 13th user is an extranet user without a department, every
11th sits in the head department as well as their own, every 97th is inactive, and users
whose offset is 0 have no TIME_ZONE set (`""`, as on portals where nobody chose one).
"""

from __future__ import annotations

from typing import Any

FIRST_NAMES = (
    "Anna", "Boris", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kira", "Luis", "Maya", "Nikolai", "Olga", "Pavel", "Quinn", "Rosa", "Sergei", "Tanya",
)  # fmt: skip
LAST_NAMES = (
    "Ivanova", "Schmidt", "Rossi", "Petrov", "Nowak", "Haddad", "Berg", "Tanaka", "Garcia", "Weber",
    "Kuznetsova", "Moreno", "Singh", "Volkov", "Sokolova", "Novak", "Murphy", "Silva", "Orlov", "Lee",
)  # fmt: skip
POSITIONS = ("Engineer", "Accountant", "Sales manager", "Support agent", "Warehouse clerk", "")
DEPARTMENT_NAMES = ("Sales", "Support", "Engineering", "Finance", "Warehouse", "Marketing", "Legal", "HR")
ZONE_NAMES = {
    10800: "Europe/Istanbul",
    7200: "Africa/Johannesburg",
    0: "",
    -18000: "America/Bogota",
    19800: "Asia/Kolkata",
    32400: "Asia/Tokyo",
    3600: "Africa/Lagos",
    -28800: "Pacific/Pitcairn",
}
HEAD_DEPARTMENT = 1


def is_active(user_id: int) -> bool:
    return user_id % 97 != 0


def is_extranet(user_id: int) -> bool:
    return user_id % 13 == 0


def department_count(users: int) -> int:
    """Departments under the head one: more than one page of 50 from 400 users on."""
    return max(2, min(60, users // 8))


def department_of(user_id: int, users: int) -> int:
    return 2 + (user_id - 1) % department_count(users)


def user_row(user_id: int, users: int, tz_offset: int) -> dict[str, Any]:
    """The `user.get` row: ID as a string, departments as a list of ints."""
    first = FIRST_NAMES[user_id % len(FIRST_NAMES)]
    last = LAST_NAMES[(user_id // len(FIRST_NAMES)) % len(LAST_NAMES)]
    if is_extranet(user_id):
        departments: list[int] = []
    elif user_id % 11 == 0:
        departments = [department_of(user_id, users), HEAD_DEPARTMENT]
    else:
        departments = [department_of(user_id, users)]
    return {
        "ID": str(user_id),
        "ACTIVE": is_active(user_id),
        "NAME": first,
        "LAST_NAME": last,
        "EMAIL": f"{first.lower()}.{last.lower()}{user_id}@example.com",
        "WORK_POSITION": POSITIONS[user_id % len(POSITIONS)],
        "UF_DEPARTMENT": departments,
        "TIME_ZONE": ZONE_NAMES.get(tz_offset, ""),
        "USER_TYPE": "extranet" if is_extranet(user_id) else "employee",
    }


def department_rows(users: int) -> list[dict[str, Any]]:
    """Every `department.get` row: a head department and a three-level tree under it."""
    head_row = {"ID": str(HEAD_DEPARTMENT), "NAME": "Emulated Ltd", "SORT": 500, "UF_HEAD": "1"}
    rows: list[dict[str, Any]] = [head_row]
    count = department_count(users)
    for department in range(2, count + 2):
        index = department - 2
        base = DEPARTMENT_NAMES[index % len(DEPARTMENT_NAMES)]
        name = base if index < len(DEPARTMENT_NAMES) else f"{base} {index // len(DEPARTMENT_NAMES) + 1}"
        parent = HEAD_DEPARTMENT if department <= 4 else 2 + (department - 5) % 3
        head = department - 1  # the first user whose department this is
        rows.append(
            {
                "ID": str(department),
                "NAME": name,
                "SORT": 500,
                "PARENT": str(parent),
                "UF_HEAD": str(head) if head <= users and not is_extranet(head) else "0",
            }
        )
    return rows
