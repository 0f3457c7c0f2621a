"""Energy model of the emulated chips and of software simulation (pure data and arithmetic).

The emulator cannot measure power; it reports what an experiment *would* cost from published power
figures and the hardware time it emulated, next to the measured CPU time of a software run times a
stated CPU power. Every figure and its source:

BrainScaleS-2 (``bss2``)
    * ``asic_w`` = 0.70 W: the BrainScaleS-2 ASIC while emulating, from Stradmann et al. 2022 (IEEE
      OJCAS 3:252, "Demonstrating analog inference on the BrainScaleS-2 mobile system", abstract):
      192 uJ for the ASIC per 276 us classification, i.e. 192 uJ / 276 us = 0.696 W (paper).
    * ``system_w`` = 5.6 W: the whole mobile system (ASIC, FPGA, board) from the same abstract (paper).
    * ``prototype_w`` = 0.057 W: the whole BrainScaleS-2 *prototype* chip (32 neurons, 32 x 32
      synapses, one plasticity processor) that learned Pong with R-STDP, Wunderlich et al. 2019
      (Front. Neurosci. 13:260, abstract; references §4). Quoted beside the full chip's figure for
      networks that fit the prototype.
BrainScaleS-1 (``bss1``)
    No published power figure is available here: energies are reported as ``None``.
Software
    ``cpu_w_per_core`` = 15 W: *assumption*, the power of one busy core of a server CPU (a 120-200 W
    CPU with 8-16 cores). Software energy = measured process CPU time x this power; memory, idle
    cores and cooling are not counted. Pass another value where the machine's figure is known.

Assumptions of the chip side: the ASIC draws its emulation power for the emulated hardware time
only (configuration and host transfer times are left out of the ASIC figure and appear in the
system figure through the emulator's estimated wall time); the plasticity processors' time between
emulation chunks is inside the hardware time (the emulator updates weights instantly).

Examples
--------
>>> e = chip_energy("bss2", hardware_time_s=0.2e-3)
>>> round(e["asic_j"] * 1e6, 1)            # 0.2 ms of hardware time at 0.696 W, in uJ
139.1
>>> software_energy(cpu_time_s=2.0)["energy_j"]
30.0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ChipPower", "CHIP_POWER", "DEFAULT_CPU_POWER_W_PER_CORE", "chip_energy", "software_energy",
           "energy_comparison", "energy_per_unit", "HardwareTime", "experiment_energy"]


@dataclass(frozen=True)
class ChipPower:
    """Published power figures of one chip (W) and where they come from."""

    asic_w: float | None
    system_w: float | None
    prototype_w: float | None
    sources: tuple

    def to_dict(self) -> dict:
        return asdict(self)


CHIP_POWER: dict[str, ChipPower] = {
    "bss2": ChipPower(
        asic_w=192e-6 / 276e-6, system_w=5.6, prototype_w=0.057,
        sources=("asic_w, system_w: Stradmann et al. 2022, IEEE OJCAS 3:252 (abstract): 192 uJ for the ASIC per "
                 "276 us sample, 5.6 W system power",
                 "prototype_w: Wunderlich et al. 2019, Front. Neurosci. 13:260 (abstract): 57 mW for the whole "
                 "prototype chip learning Pong")),
    "bss1": ChipPower(asic_w=None, system_w=None, prototype_w=None,
                      sources=("no published power figure available here",)),
}

#: Power of one busy CPU core (W), *assumption* (see the module docstring).
DEFAULT_CPU_POWER_W_PER_CORE = 15.0


def _check_time(name: str, value: float) -> float:
    value = float(value)
    if not (value == value and value >= 0 and value != float("inf")):
        raise ValueError(f"{name} must be a finite time >= 0 s, got {value!r}")
    return value


def chip_energy(chip: str, hardware_time_s: float, wall_time_s: float | None = None) -> dict:
    """Energy of an experiment on the chip from its hardware time.

    Parameters
    ----------
    chip : {"bss2", "bss1"}
        Which chip.
    hardware_time_s : float
        Emulated hardware time (s): biological time / speed-up.
    wall_time_s : float, optional
        Estimated wall time on the system (s, with configuration and run overheads); default: the
        hardware time.

    Returns
    -------
    dict
        ``asic_j`` (ASIC power x hardware time), ``system_j`` (system power x wall time),
        ``prototype_j`` (prototype chip power x hardware time), each None where no figure exists; the
        power figures (W), times (s) and sources.
    """
    if chip not in CHIP_POWER:
        raise ValueError(f"chip must be one of {sorted(CHIP_POWER)}, got {chip!r}")
    hardware_time_s = _check_time("hardware_time_s", hardware_time_s)
    wall_time_s = hardware_time_s if wall_time_s is None else _check_time("wall_time_s", wall_time_s)
    power = CHIP_POWER[chip]

    def times(watts, seconds):
        return None if watts is None else float(watts * seconds)

    return {"chip": chip, "hardware_time_s": hardware_time_s, "wall_time_s": wall_time_s,
            "asic_w": power.asic_w, "system_w": power.system_w, "prototype_w": power.prototype_w,
            "asic_j": times(power.asic_w, hardware_time_s), "system_j": times(power.system_w, wall_time_s),
            "prototype_j": times(power.prototype_w, hardware_time_s), "sources": list(power.sources)}


def software_energy(cpu_time_s: float, cpu_power_w_per_core: float = DEFAULT_CPU_POWER_W_PER_CORE) -> dict:
    """Energy of a software run: measured CPU time (s, all cores summed) x the power of one busy core (W)."""
    cpu_time_s = _check_time("cpu_time_s", cpu_time_s)
    if not (cpu_power_w_per_core == cpu_power_w_per_core and 0 < cpu_power_w_per_core < 1e4):
        raise ValueError(f"cpu_power_w_per_core must be a power in (0, 1e4) W, got {cpu_power_w_per_core!r}")
    return {"cpu_time_s": cpu_time_s, "cpu_power_w_per_core": float(cpu_power_w_per_core),
            "energy_j": float(cpu_time_s * cpu_power_w_per_core),
            "assumption": "process CPU time x the power of one busy core; idle cores, memory and cooling "
                          "not counted"}


def energy_comparison(chip: dict, software: dict, units: float, unit_name: str) -> dict:
    """Per-unit energies (J per sample, per iteration, ...) of a chip run and a software run, and their ratio.

    Parameters
    ----------
    chip : dict
        :func:`chip_energy` of the chip run.
    software : dict
        :func:`software_energy` of the software run.
    units : float
        Number of units (samples, iterations) each run produced (> 0).
    unit_name : str
        Name of the unit, e.g. "iteration".
    """
    if not units > 0:
        raise ValueError(f"units must be > 0, got {units!r}")
    per = {f"chip_asic_j_per_{unit_name}": None if chip["asic_j"] is None else chip["asic_j"] / units,
           f"chip_system_j_per_{unit_name}": None if chip["system_j"] is None else chip["system_j"] / units,
           f"software_j_per_{unit_name}": software["energy_j"] / units}
    asic = chip["asic_j"]
    per["software_over_chip_asic"] = None if not asic else software["energy_j"] / asic
    return per


def energy_per_unit(energy: dict, units: float, unit_name: str) -> dict:
    """Joules per unit (sample, iteration, ...) of a :func:`chip_energy` or :func:`software_energy` result.

    Examples
    --------
    >>> energy_per_unit(software_energy(cpu_time_s=2.0), units=4, unit_name="sample")
    {'j_per_sample': 7.5}
    >>> sorted(energy_per_unit(chip_energy("bss2", 1e-3), units=10, unit_name="sample"))
    ['asic_j_per_sample', 'prototype_j_per_sample', 'system_j_per_sample']
    """
    if not units > 0:
        raise ValueError(f"units must be > 0, got {units!r}")
    if "energy_j" in energy:
        return {f"j_per_{unit_name}": energy["energy_j"] / units}
    return {f"{kind}_j_per_{unit_name}": None if energy[f"{kind}_j"] is None else energy[f"{kind}_j"] / units
            for kind in ("asic", "system", "prototype")}


class HardwareTime:
    """Hardware time of an experiment summed over its runs on a chip backend (several ``setup``/``end``).

    Call :meth:`add` with the backend module before every ``sim.end()``: a backend that emulates a chip
    (one with ``get_hardware_report``) adds its hardware time and estimated wall time; on any other
    backend nothing is added and :attr:`chip` stays None.

    Examples
    --------
    >>> import types
    >>> hw = HardwareTime()
    >>> hw.add(types.SimpleNamespace())               # a software backend: no report
    >>> hw.chip is None
    True
    >>> chip = types.SimpleNamespace(get_hardware_report=lambda: {"chip": "bss2", "hardware_time_s": 1e-3,
    ...                                                          "estimated_wall_time_s": 0.5})
    >>> hw.add(chip); hw.add(chip)
    >>> hw.chip, hw.hardware_time_s, hw.wall_time_s
    ('bss2', 0.002, 1.0)
    """

    def __init__(self, chip: str | None = None, hardware_time_s: float = 0.0, wall_time_s: float = 0.0):
        self.chip, self.hardware_time_s, self.wall_time_s = chip, float(hardware_time_s), float(wall_time_s)

    def add(self, sim) -> None:
        """Add the hardware time of the run(s) since ``sim.setup`` (no-op on a software backend)."""
        report = getattr(sim, "get_hardware_report", None)
        if report is None:
            return
        report = report()
        if self.chip is not None and report["chip"] != self.chip:
            raise ValueError(f"one experiment on two chips: {self.chip!r} and {report['chip']!r}")
        self.chip = report["chip"]
        self.hardware_time_s += float(report["hardware_time_s"])
        self.wall_time_s += float(report["estimated_wall_time_s"])

    def to_dict(self) -> dict:
        return {"chip": self.chip, "hardware_time_s": self.hardware_time_s, "wall_time_s": self.wall_time_s}

    @classmethod
    def from_dict(cls, data: dict | None) -> "HardwareTime":
        return cls() if not data else cls(data["chip"], data["hardware_time_s"], data["wall_time_s"])


def experiment_energy(hardware: HardwareTime, cpu_time_s: float, units: float, unit_name: str,
                      cpu_power_w_per_core: float = DEFAULT_CPU_POWER_W_PER_CORE) -> dict:
    """Energy of one experiment and per unit of its output (J per sample, per training iteration, ...).

    On a chip backend (``hardware.chip`` set) the energy is the chip model (:func:`chip_energy`: ASIC
    power x hardware time, system power x estimated wall time, prototype power x hardware time) and
    ``j_per_<unit>`` is the ASIC figure; the emulator's own CPU time is kept as
    ``emulator_cpu_time_s`` (the cost of the emulation, not of the chip). On a software backend it is
    :func:`software_energy` (measured CPU time x the stated power of a core).

    Parameters
    ----------
    hardware : HardwareTime
        Hardware time summed over the experiment's runs (no chip: software backend).
    cpu_time_s : float
        Process CPU time of the same experiment (s).
    units : float
        How many units (samples, iterations) the experiment produced (> 0).
    unit_name : str
        The unit, e.g. "sample" or "iteration".
    cpu_power_w_per_core : float
        Power of one busy core (W, assumption).

    Returns
    -------
    dict
        ``model`` ("chip" or "software"), ``unit``, ``units``, ``j_per_<unit>``, the per-unit figures
        of every power figure, and the totals of :func:`chip_energy` / :func:`software_energy`.

    Examples
    --------
    >>> e = experiment_energy(HardwareTime("bss2", 2e-3, 1.0), cpu_time_s=30.0, units=100, unit_name="sample")
    >>> e["model"], round(e["j_per_sample"] * 1e6, 2)          # 2 ms x 0.696 W / 100 samples, in uJ
    ('chip', 13.91)
    >>> e = experiment_energy(HardwareTime(), cpu_time_s=30.0, units=100, unit_name="sample")
    >>> e["model"], e["j_per_sample"]                          # 30 s x 15 W / 100 samples
    ('software', 4.5)
    """
    if not units > 0:
        raise ValueError(f"units must be > 0, got {units!r}")
    cpu_time_s = _check_time("cpu_time_s", cpu_time_s)
    if hardware.chip is not None:
        chip = chip_energy(hardware.chip, hardware.hardware_time_s, hardware.wall_time_s)
        per = energy_per_unit(chip, units, unit_name)
        return {"model": "chip", "unit": unit_name, "units": float(units),
                f"j_per_{unit_name}": per[f"asic_j_per_{unit_name}"], **per, **chip,
                "emulator_cpu_time_s": cpu_time_s}
    software = software_energy(cpu_time_s, cpu_power_w_per_core)
    return {"model": "software", "unit": unit_name, "units": float(units),
            **energy_per_unit(software, units, unit_name), **software}
