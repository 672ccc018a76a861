"""GPU gauges and the /stats GPU cards, read through NVML (pynvml) where an NVIDIA driver answers.

GPU readings are host-wide: whichever worker answers a scrape reports them (they are not per worker).
"""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)


class Gpu:
    def __init__(self, nvml) -> None:
        self._nvml = nvml
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]

    @classmethod
    def probe(cls):
        """A GPU collector, or None where there is no NVIDIA driver (no error, no metrics)."""
        try:
            import pynvml
            pynvml.nvmlInit()
            return cls(pynvml)
        except Exception:  # no library, no driver, no device: simply no GPU metrics
            return None

    def snapshot(self) -> list[dict]:
        """The GPUs for /stats (and the dashboard's GPU cards)."""
        nv = self._nvml
        out = []
        for i, h in enumerate(self._handles):
            try:
                name = nv.nvmlDeviceGetName(h)
                u = nv.nvmlDeviceGetUtilizationRates(h)
                m = nv.nvmlDeviceGetMemoryInfo(h)
                t = nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
            except Exception:
                log.warning("reading GPU %d through NVML failed", i, exc_info=True)
                continue
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else str(name),
                        "utilization": u.gpu / 100.0, "memory_used_bytes": int(m.used),
                        "memory_total_bytes": int(m.total), "temperature_c": float(t)})
        return out

    def collect(self):
        nv = self._nvml
        util = GaugeMetricFamily("gateway_gpu_utilization_ratio", "GPU utilisation (0-1)", labels=["gpu"])
        used = GaugeMetricFamily("gateway_gpu_memory_used_bytes", "GPU memory used", labels=["gpu"])
        total = GaugeMetricFamily("gateway_gpu_memory_total_bytes", "GPU memory total", labels=["gpu"])
        temp = GaugeMetricFamily("gateway_gpu_temperature_celsius", "GPU temperature", labels=["gpu"])
        for i, h in enumerate(self._handles):
            try:
                u = nv.nvmlDeviceGetUtilizationRates(h)
                m = nv.nvmlDeviceGetMemoryInfo(h)
                t = nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
            except Exception:
                log.warning("reading GPU %d through NVML failed", i, exc_info=True)
                continue
            util.add_metric([str(i)], u.gpu / 100.0)
            used.add_metric([str(i)], float(m.used))
            total.add_metric([str(i)], float(m.total))
            temp.add_metric([str(i)], float(t))
        yield from (util, used, total, temp)
