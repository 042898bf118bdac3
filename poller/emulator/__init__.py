"""A faithful local stand-in for a Bitrix24 portal, for the demo, the tests and benchmarks."""

from poller.emulator.server import Emulator, EmulatorSettings, EmulatorStats
from poller.emulator.world import SimClock, Workday, World

__all__ = ["Emulator", "EmulatorSettings", "EmulatorStats", "SimClock", "Workday", "World"]
