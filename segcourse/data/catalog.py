"""What each course dataset contains: class names, colours, things vs stuff.

One place defines every dataset's classes and palette, so every plot of a dataset
uses the same colours and every lesson the same class ids. Class id ``i`` is drawn
with ``palette[i]``; :data:`segcourse.constants.IGNORE_INDEX` (255) is drawn white.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..constants import IGNORE_INDEX


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a course dataset.

    Attributes:
        name: the dataset's name (folder name under ``datasets/``).
        task: ``"binary"``, ``"semantic"`` or ``"panoptic"``.
        classes: class names; the index is the class id stored in the masks.
        palette: one RGB colour per class.
        things: ids of countable classes that have instances (empty for purely semantic sets).
    """

    name: str
    task: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    things: tuple[int, ...] = ()
    ignore_index: int = IGNORE_INDEX
    description: str = field(default="", compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def stuff(self) -> tuple[int, ...]:
        """Ids of amorphous classes (road, sky...): every class that is not a thing."""
        return tuple(i for i in range(self.num_classes) if i not in self.things)


CELLS = DatasetInfo(
    name="cells", task="binary", classes=("background", "nucleus"),
    palette=((0, 0, 0), (255, 64, 160)), things=(1,),
    description="fluorescence-like nuclei that touch and overlap, uneven illumination, blur and noise",
)
SHAPES = DatasetInfo(
    name="shapes", task="semantic", classes=("background", "circle", "rectangle", "triangle"),
    palette=((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200)), things=(1, 2, 3),
    description="textured background with circles, rectangles and triangles at several scales",
)
AERIAL = DatasetInfo(
    name="aerial", task="binary", classes=("ground", "building"),
    palette=((0, 0, 0), (255, 200, 0)), things=(),
    description="textured ground with small, rare buildings and confusable roofs-like clutter",
)
STREET = DatasetInfo(
    name="street", task="panoptic",
    classes=("road", "sidewalk", "building", "vegetation", "sky", "car", "person"),
    palette=((128, 64, 128), (244, 35, 232), (70, 70, 70), (107, 142, 35), (70, 130, 180), (0, 0, 142), (220, 20, 60)),
    things=(5, 6),
    description="street scenes: stuff (road, sidewalk, building, vegetation, sky) and things (cars, people) at several scales",
)

DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (CELLS, SHAPES, AERIAL, STREET)}

#: Variants of a dataset that share its classes and palette (``shapes-multiscale`` is ``shapes``
#: with small and large objects, see ``datasets/shapes/README.md``).
ALIASES: dict[str, str] = {"shapes-multiscale": "shapes"}


def get_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a course dataset (a variant such as ``shapes-multiscale`` gets its base's).

    Raises:
        ValueError: ``name`` is not one of the course's datasets.
    """
    try:
        return DATASETS[ALIASES.get(name, name)]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; the course's datasets are {', '.join(DATASETS)}") from None
