"""pyannote-embloss: metric-learning losses for speaker embeddings, as a pyannote.audio 4 plugin."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
exec((here / "pyannote_embloss" / "version.py").read_text(), version)

setup(
    name="pyannote-embloss",
    version=version["__version__"],
    description=(
        "Speaker-embedding training with a family of metric-learning losses "
        "(softmax, center, CoCo, AM, AAM, contrastive, triplet) for pyannote.audio 4"
    ),
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["pyannote_embloss", "pyannote_embloss.*"]),
    package_data={"pyannote_embloss": ["recipes/*.yml"]},
    install_requires=[
        # every release the code is tested on, so that the plugin installs beside the pyannote.audio
        # stack a user already has: .ci/constraints.txt pins the oldest set CI tests, and
        # .ci/constraints-newest.txt the newest (pyannote_embloss/compat.py: which torchcodec
        # goes with which torch)
        "torch>=2.9,<2.15",
        "torchaudio>=2.9,<2.12",
        "torchcodec>=0.8,<0.18",
        "pyannote.audio>=4.0.7,<4.1",
        "pytorch-metric-learning>=2.8",
        "lightning>=2.4",
        "typer>=0.12",
        "PyYAML>=6",
        "matplotlib>=3.7",
        "pyroomacoustics>=0.7",
    ],
    extras_require={
        # pytest-xdist: .ci/test runs the suite on every core (issue 36: the suite's wall time)
        "test": ["pytest>=8", "pytest-xdist>=3.5", "onnx", "onnxruntime"],
        "onnx": ["onnx", "onnxruntime"],
        "tensorboard": ["tensorboard"],
    },
    entry_points={
        "console_scripts": ["pyannote-audio-emb=pyannote_embloss.cli:app"],
    },
)
