"""A faithful local stand-in for a Bitrix24 portal, for the demo, the tests and benchmarks."""

from poller.emulator.server import Emulator
from poller.emulator.settings import EmulatorSettings, EmulatorStats
from poller.emulator.simclock import SimClock
from poller.emulator.world import Record, Workday, World

__all__ = ["Emulator", "EmulatorSettings", "EmulatorStats", "Record", "SimClock", "Workday", "World"]
