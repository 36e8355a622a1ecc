"""Quality and active-learning numbers: arrays in, arrays out (``import numeric``): the Django-free bottom layer.

Nothing in this package imports Django or touches the database. Callers (selectors, jobs) fetch rows, build numpy
arrays, call these functions and store or use the result. Every function is vectorised over the rows of its input
(no Python loop over items or judgments), documents its array conventions and edge cases, and is tested against
published tables and an independent oracle library (dev-only dependencies).

Modules, each re-exported here:

- :mod:`.agreement` — Cohen's kappa (unweighted, linear, quadratic), Fleiss' kappa, Krippendorff's alpha (nominal,
  ordinal, interval, ratio), percent agreement;
- :mod:`.aggregation` — majority vote, Dawid-Skene;
- :mod:`.consensus` — one task's Dawid-Skene posterior from fitted parameters (routing's dynamic consensus);
- :mod:`.bradley_terry` — Bradley-Terry strengths (ties: half or Davidson) with bootstrap intervals;
- :mod:`.peers` — Cohen's kappa between every pair of annotators with enough shared items;
- :mod:`.stats` — exact binomial tests, Benjamini-Hochberg, Wilson intervals;
- :mod:`.bias` — position bias, verbosity bias, self-consistency, gold accuracy per annotator;
- :mod:`.uncertainty` — least confidence, margin, entropy, pairwise closeness to 0.5 (active learning);
- :mod:`.sampling` — reservoir sampling of streams;
- :mod:`._keys` — ``group_keys``: ``np.unique`` of small-range integer keys by counting.
"""

from __future__ import annotations

from ._keys import *  # noqa: F403
from .aggregation import *  # noqa: F403
from .agreement import *  # noqa: F403
from .bias import *  # noqa: F403
from .bradley_terry import *  # noqa: F403
from .consensus import *  # noqa: F403
from .peers import *  # noqa: F403
from .sampling import *  # noqa: F403
from .stats import *  # noqa: F403
from .uncertainty import *  # noqa: F403
from .uncertainty import FloatArray as FloatArray
