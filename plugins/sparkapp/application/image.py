"""The job image's contract: where it holds the project, its Spark, its user, its metrics agent.

The manifests point into the image (``local://`` paths, the Spark version, the pods' uid, the JMX
exporter's jar), and the local backend maps the same paths back to the checkout, so all of it is one
value, :data:`IMAGE_CONTRACT`, that ``Dockerfile.spark`` builds (a test checks it). A caller with
another image passes its own :class:`ImageContract` to the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageContract:
    """What the Spark job image provides, as the manifests rely on it.

    :param app_root: where the image holds the project (its ``spark_jobs/`` among it); ``local://``
        paths point here.
    :param python_path: the project's folders on the image's ``PYTHONPATH``, relative to ``app_root``.
    :param spark_version: Spark version of the image; it must match the pinned ``pyspark``.
    :param spark_uid: uid and gid of the user the pods run as.
    :param jmx_exporter_version: version of the Prometheus JMX exporter java agent in the image.
    """

    app_root: str = "/opt/spark/work-dir"
    python_path: tuple[str, ...] = (".", "plugins")
    spark_version: str = "4.3.0"
    spark_uid: int = 185
    jmx_exporter_version: str = "1.0.1"

    @property
    def jmx_exporter_jar(self) -> str:
        """The JMX exporter's jar, where ``Dockerfile.spark`` downloads it."""
        return f"/opt/spark/monitoring/jmx_prometheus_javaagent-{self.jmx_exporter_version}.jar"

    def local_uri(self, path: str) -> str:
        """The ``local://`` URI of ``path`` (relative to the project root) inside the image."""
        return f"local://{self.app_root}/{path}"


#: This project's job image (``Dockerfile.spark``).
IMAGE_CONTRACT = ImageContract()

#: Where the job image holds the project (its ``spark_jobs/`` among it); ``local://`` paths point here.
IMAGE_APP_ROOT = IMAGE_CONTRACT.app_root
#: The project's folders on the job image's ``PYTHONPATH``, relative to ``IMAGE_APP_ROOT``: jobs
#: import ``spark_jobs.*`` and the pipeline's shared code (``flight_delays.*`` under ``plugins/``).
PYTHON_PATH = IMAGE_CONTRACT.python_path
#: Spark version of the job image; it must match the pinned ``pyspark`` (a test checks it).
SPARK_VERSION = IMAGE_CONTRACT.spark_version
#: The uid and gid of the ``spark`` user of the official apache/spark images, which the job image keeps.
SPARK_UID = IMAGE_CONTRACT.spark_uid
#: The Prometheus JMX exporter java agent in the job image (Dockerfile.spark downloads it there); the
#: operator starts it in the driver and executors (``spec.monitoring``), serving ``METRICS_PORT``.
JMX_EXPORTER_VERSION = IMAGE_CONTRACT.jmx_exporter_version
JMX_EXPORTER_JAR = IMAGE_CONTRACT.jmx_exporter_jar
