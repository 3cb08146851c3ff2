"""Constants shared by the whole course, defined once.

``IGNORE_INDEX`` is the label value that marks pixels with no valid class (object
borders in Pascal VOC, unlabelled regions): losses skip them and metrics leave them
out of the confusion matrix. It is 255 because masks are stored as 8-bit PNGs and
255 is the value Pascal VOC, Cityscapes' train ids and torchvision's references use.
"""

IGNORE_INDEX: int = 255

#: Environment variable that selects the run mode (``smoke``, ``quick`` or ``full``).
MODE_ENV: str = "SEGCOURSE_MODE"

#: Environment variable naming the JSON file where a lesson's key results are written.
REPORT_ENV: str = "SEGCOURSE_REPORT"

#: Environment variable overriding where generated datasets are written.
DATA_ENV: str = "SEGCOURSE_DATA"

#: Environment variable that shifts every seed given to ``seed_everything`` (default 0). The
#: spread measurement (``python -m coursetools course --spread``) runs the course with offsets
#: 0, 100, 200, ... to see how far a trained result moves when the floating-point path changes,
#: as it does on another CPU; lessons never set it.
SEED_OFFSET_ENV: str = "SEGCOURSE_SEED_OFFSET"
