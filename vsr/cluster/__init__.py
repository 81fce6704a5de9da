"""Ray: a file job's segments run on worker actors (the model loaded once per worker), the driver
keeps the manifest and stitches. ``pip install 'vsr[cluster]'``; see docs/cluster.md.

``import vsr.cluster`` does not import Ray; :func:`vsr.cluster.driver.upscale_on_workers` and
:class:`vsr.cluster.pool.WorkerPool` import it when they run (one line saying how to install it
when it is missing).
"""

from __future__ import annotations
