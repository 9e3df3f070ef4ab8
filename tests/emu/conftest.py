"""Fixtures for the emulator tests."""
from __future__ import annotations

import pytest

from gpucnn import emu


@pytest.fixture(params=emu.ORDERS)
def order(request):
    """Run the test once per thread order (shuffled with a fixed seed)."""
    with emu.thread_order(request.param, seed=1234):
        yield request.param
