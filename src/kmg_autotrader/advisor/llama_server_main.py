"""Entry point the bot runs for its local model server: ``python -m
kmg_autotrader.advisor.llama_server_main <llama_cpp.server arguments>``.

It is ``python -m llama_cpp.server`` with llama.cpp's "extra buffer types" (the CPU weight
repacking and AMX kernels) switched off. Those kernels are picked from the build machine's CPU
flags, and where the CPU advertises AMX but the kernel or hypervisor does not grant it, the first
multi-token batch decode dies with a segmentation fault (seen with llama-cpp-python 0.3.36 on a
Xeon VM). Plain CPU kernels are a little slower and always safe; a 135M model does not notice.
"""

from __future__ import annotations

from typing import Any


def _without_extra_buffer_types() -> None:
    """Make every model load with ``use_extra_bufts = False``."""
    import llama_cpp.llama_cpp as low_level

    original = low_level.llama_model_default_params

    def patched() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = patched


def main() -> None:
    """Run ``llama_cpp.server`` (its own command-line parsing) with the safe CPU kernels."""
    _without_extra_buffer_types()
    from llama_cpp.server.__main__ import main as server_main

    server_main()


if __name__ == "__main__":
    main()
