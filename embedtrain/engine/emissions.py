"""`training.track_emissions`: the energy a run uses and its CO2-equivalent, measured by codecarbon's offline tracker
on the main process (which measures the whole machine, so every process is counted).

Offline: no network call; the carbon intensity is that of the country in CODECARBON_COUNTRY_ISO_CODE (or codecarbon's
config file), else codecarbon's world average. The measurements go to `logs/codecarbon/emissions.csv`.
"""

import logging
from pathlib import Path

from embedtrain.engine.run_files import EMISSIONS_FOLDER


class EmissionsMeter:
    """Started with the training loop, stopped before the final save (whose model card reports the result)."""

    def __init__(self, output_dir: Path, project_name: str) -> None:
        self.folder = output_dir / EMISSIONS_FOLDER
        self.project_name = project_name
        self.tracker = None

    def start(self) -> None:
        from codecarbon import OfflineEmissionsTracker
        from codecarbon.output_methods.base_output import OutputMethod

        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its start-up and per-measurement INFO lines
        self.folder.mkdir(parents=True, exist_ok=True)
        # allow_multiple_runs: codecarbon otherwise refuses to measure while another run on the machine does.
        self.tracker = OfflineEmissionsTracker(project_name=self.project_name, output_dir=str(self.folder),
                                               output_methods=[OutputMethod.CSV], log_level="error",
                                               allow_multiple_runs=True)
        self.tracker.start()

    def stop(self) -> float | None:
        """kg CO2-eq since `start` (None if it was not started or codecarbon could not measure); stops measuring."""
        if self.tracker is None:
            return None
        tracker, self.tracker = self.tracker, None
        kilograms = tracker.stop()
        return float(kilograms) if kilograms is not None else None
