"""The embedding cache of an experiment (issue 36): keys, damage, and a second `evaluate` that embeds nothing"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from pyannote_embloss.errors import DataError
from pyannote_embloss.inference.cache import CACHE_DIR, EmbeddingCache, model_digest
from pyannote_embloss.data.conditions import TestConditions, parse_conditions
from pyannote_embloss.inference.embedding import DeferredModel, embed_files
from pyannote_embloss.evaluation.verification import EvaluationOptions, _model_and_cache, evaluate
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.models import SincTDNN

from helpers import save_untrained_checkpoint, tiny_experiment
from test_verify import SMALL, baseline_experiment, small_yml  # noqa: F401  (the fixture)


@pytest.fixture
def files(corpus_root, tmp_path):
    """Copies of 4 real utterances (their content can change)"""
    sources = sorted((corpus_root / "WAVE").glob("*/*.flac"))[:4]
    copies = []
    for source in sources:
        copies.append(tmp_path / "audio" / source.name)
        copies[-1].parent.mkdir(exist_ok=True)
        shutil.copy(source, copies[-1])
    return [str(p) for p in copies]


def small_model(seed: int):
    torch.manual_seed(seed)
    return SincTDNN(stride=10, dimension=32).eval()


def test_the_key_changes_with_the_checkpoint_the_condition_and_the_content(files, tmp_path):
    first = save_untrained_checkpoint(small_model(0), tmp_path / "first.ckpt")
    second = save_untrained_checkpoint(small_model(1), tmp_path / "second.ckpt")
    model = small_model(0)
    cache = EmbeddingCache.for_model(tmp_path / CACHE_DIR, model, first)
    again = EmbeddingCache.for_model(tmp_path / CACHE_DIR, model, first)
    other = EmbeddingCache.for_model(tmp_path / CACHE_DIR, model, second)
    path = files[0]
    key = cache.key(path)
    assert key == again.key(path)  # the same checkpoint's content: the same entry
    assert key != other.key(path)  # another checkpoint
    assert key != cache.key(path, segment=(0.5, 1.5)) != cache.key(path, segment=(0.5, 1.6))
    conditions = TestConditions(parse_conditions(["colored:5", "colored:10"]))
    colored5, colored10 = [c for c in conditions.conditions if not c.is_clean]
    assert len({key, cache.key(path, condition=conditions.identity(colored5, "a")),
                cache.key(path, condition=conditions.identity(colored10, "a")),
                cache.key(path, condition=conditions.identity(colored5, "b"))}) == 4
    # the same checkpoint copied elsewhere keeps its entries; a rewritten file gets new ones
    shutil.copy(first, tmp_path / "copy.ckpt")
    assert EmbeddingCache.for_model(tmp_path / CACHE_DIR, model, tmp_path / "copy.ckpt").key(path) == key
    with open(path, "ab") as f:
        f.write(b"\0")
    assert cache.key(path) != key
    os.utime(path, ns=(1, 1))
    assert cache.key(path) != key


def test_a_damaged_entry_is_recomputed_never_read(files, tmp_path):
    model = small_model(0)
    checkpoint = save_untrained_checkpoint(small_model(0), tmp_path / "model.ckpt")
    cache = EmbeddingCache.for_model(tmp_path / CACHE_DIR, model, checkpoint)
    expected = embed_files(model, files, progress=False)
    assert np.array_equal(embed_files(model, files, progress=False, cache=cache), expected)
    assert (cache.hits, cache.misses) == (0, 4) and len(list((tmp_path / CACHE_DIR).glob("*/*.emb"))) == 4
    assert np.array_equal(embed_files(model, files, progress=False, cache=cache), expected)
    assert (cache.hits, cache.misses) == (4, 4)
    # flip one byte of an entry, truncate another: both detected, recomputed, rewritten
    flipped, truncated = (cache._path(cache.key(p)) for p in files[:2])
    data = bytearray(flipped.read_bytes())
    data[20] ^= 0xFF
    flipped.write_bytes(bytes(data))
    truncated.write_bytes(truncated.read_bytes()[:30])
    again = EmbeddingCache.for_model(tmp_path / CACHE_DIR, model, checkpoint)
    assert np.array_equal(embed_files(model, files, progress=False, cache=again), expected)
    assert (again.hits, again.misses, again.damaged) == (2, 2, 2)
    assert again.get(again.key(files[0])) is not None and again.get(again.key(files[1])) is not None
    # bounded: the oldest entries go first
    again.max_bytes = 2 * flipped.stat().st_size
    assert again.bound() > 0 and again.size() <= again.max_bytes


def test_a_cache_that_cannot_be_written_warns_once_and_the_embeddings_are_computed(files, tmp_path):
    model = small_model(0)
    checkpoint = save_untrained_checkpoint(small_model(0), tmp_path / "model.ckpt")
    (tmp_path / "a-file").write_text("not a folder")  # as a full disk or a read-only folder would, mkdir fails
    cache = EmbeddingCache.for_model(tmp_path / "a-file" / CACHE_DIR, model, checkpoint)
    with pytest.warns(UserWarning, match="cannot be written.*--no-cache") as warned:
        embeddings = embed_files(model, files, progress=False, cache=cache)
    assert len(warned) == 1 and cache.unwritable
    assert np.array_equal(embeddings, embed_files(model, files, progress=False))
    assert cache.summary()["bytes"] == 0 and not list(tmp_path.glob("**/*.tmp"))


def test_a_second_evaluate_embeds_nothing_and_writes_the_same_results(small_yml, tmp_path):  # noqa: F811
    experiment = baseline_experiment(tmp_path / "baseline", SMALL)
    first = evaluate(experiment, database=str(small_yml), progress=False)
    written = json.loads(open(first["json"]).read())
    assert first["cache"]["hits"] == 0 and first["cache"]["misses"] > 0 and "cache" not in written
    second = evaluate(experiment, database=str(small_yml), progress=False)
    assert second["cache"]["misses"] == 0 and second["cache"]["hits"] == first["cache"]["misses"]
    assert json.loads(open(second["json"]).read()) == written  # EERs, minDCF, Cllr, thresholds, everything
    # a damaged entry is computed again, to the same results
    entry = next((experiment.directory / CACHE_DIR).glob("*/*.emb"))
    entry.write_bytes(entry.read_bytes()[:-3] + b"xyz")
    third = evaluate(experiment, database=str(small_yml), progress=False)
    assert third["cache"]["damaged"] == 1 and third["cache"]["misses"] == 1
    assert json.loads(open(third["json"]).read()) == written
    assert written["training_sample"] == {"files_per_speaker": None, "max_speakers": None, "budget": 50_000,
                                          "num_speakers": 6, "num_files": 18}
    # a bounded training sample for the PLDA and the cohort: recorded, and already in the cache
    sample = evaluate(experiment, database=str(small_yml), progress=False, training_files_per_speaker=2,
                      training_speakers=4)
    assert sample["training_sample"] == {"files_per_speaker": 2, "max_speakers": 4, "budget": 50_000,
                                         "num_speakers": 4, "num_files": 8}
    assert sample["plda"]["num_utterances"] == 8 and sample["cohort"]["speakers"] == 4
    assert sample["cache"]["misses"] == 0
    # a budget below the corpus' 18 training utterances: as many per speaker as fit (12 // 6 = 2)
    budget = evaluate(experiment, database=str(small_yml), progress=False, training_budget=12)
    assert budget["training_sample"]["num_files"] == 12 and budget["cache"]["misses"] == 0
    # --no-cache: nothing read, nothing written; deleting the folder is safe
    shutil.rmtree(experiment.directory / CACHE_DIR)
    fourth = evaluate(experiment, database=str(small_yml), progress=False, cache=False)
    assert "cache" not in fourth and not (experiment.directory / CACHE_DIR).exists()
    assert json.loads(open(fourth["json"]).read()) == written


def test_a_checkpoint_s_cache_is_found_without_loading_it(files, tmp_path):
    model = small_model(0)
    checkpoint = save_untrained_checkpoint(small_model(0), tmp_path / "model.ckpt")
    directory = tmp_path / CACHE_DIR
    assert EmbeddingCache.for_checkpoint(directory, checkpoint) is None  # no model of it has used the folder yet
    cache = EmbeddingCache.for_model(directory, model, checkpoint)  # stores the model's card
    found, dimension = EmbeddingCache.for_checkpoint(directory, checkpoint)
    assert found == cache and dimension == 32 and found.key(files[0]) == cache.key(files[0])
    assert EmbeddingCache.for_checkpoint(directory, checkpoint, device="cuda:1")[0] != cache  # a GPU: other entries
    other = save_untrained_checkpoint(small_model(1), tmp_path / "other.ckpt")
    assert EmbeddingCache.for_checkpoint(directory, other) is None
    assert EmbeddingCache.for_checkpoint(directory, tmp_path / "missing.ckpt") is None  # loading it will say why
    (card,) = (directory / "models").glob("*.json")
    card.write_text('{"sample_rate": 16000')  # a damaged card: the model is loaded, the card written again
    assert EmbeddingCache.for_checkpoint(directory, checkpoint) is None
    EmbeddingCache.for_model(directory, model, checkpoint)
    assert EmbeddingCache.for_checkpoint(directory, checkpoint)[0] == cache


#: a second evaluation, in a fresh process: what it imported, what the cache gave
SECOND_EVALUATION = """
import json, sys
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.evaluation.verification import evaluate
results = evaluate(Experiment.load(sys.argv[1]), protocol=sys.argv[2], database=sys.argv[3], progress=False)
print(json.dumps({"imported": [m for m in ("pyannote.audio", "lightning") if m in sys.modules], **results["cache"]}))
"""


def test_a_second_evaluate_loads_no_model_unless_an_embedding_is_missing(small_yml, tmp_path):  # noqa: F811
    directory = tiny_experiment(tmp_path / "exp")
    (directory / "checkpoints").mkdir()
    save_untrained_checkpoint(small_model(0), directory / "checkpoints" / "best.ckpt")
    first = evaluate(Experiment.load(directory), protocol=SMALL, database=str(small_yml), progress=False)
    written = open(first["json"]).read()
    assert first["cache"]["misses"] > 0 and (directory / ".config-checked.json").is_file()

    def again():
        result = subprocess.run([sys.executable, "-c", SECOND_EVALUATION, directory, SMALL, small_yml],
                                capture_output=True, text=True, env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0"})
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.splitlines()[-1])

    # every embedding cached, config.yml as it was checked: neither the model nor pyannote.audio nor Lightning
    second = again()
    assert second["imported"] == [] and second["misses"] == 0 and second["hits"] == first["cache"]["misses"]
    assert open(first["json"]).read() == written
    # one entry damaged: the deferred model is loaded to compute it again, to the very same results
    checkpoint = directory / "checkpoints" / "best.ckpt"
    model, cache = _model_and_cache(Experiment.load(directory), checkpoint, EvaluationOptions())
    assert isinstance(model, DeferredModel) and not model.loaded and cache.model == model_digest(checkpoint)
    entry = next((directory / CACHE_DIR).glob("*/*.emb"))
    entry.write_bytes(entry.read_bytes()[:-3] + b"xyz")
    third = evaluate(Experiment.load(directory), protocol=SMALL, database=str(small_yml), progress=False)
    assert (third["cache"]["damaged"], third["cache"]["misses"]) == (1, 1) and open(first["json"]).read() == written
    # the checkpoint rewritten while it is evaluated (a training writing it): refused, never two models in one cache
    save_untrained_checkpoint(small_model(1), checkpoint)
    with pytest.raises(DataError, match="changed while it was evaluated"):
        model.get()


@pytest.mark.parametrize("option", ["--training-files", "--training-speakers", "--training-budget", "--cohort-files"])
def test_training_sample_options_out_of_range_are_refused_first(option, tmp_path):
    from typer.testing import CliRunner

    from pyannote_embloss.cli import app

    experiment = baseline_experiment(tmp_path / "baseline", SMALL)
    result = CliRunner().invoke(app, ["evaluate", str(experiment.directory), option, "0"])
    assert result.exit_code == 2, result.output
    assert f"Error: {option} must be an integer >= 1 (got 0)." in " ".join(result.output.split())
    assert sorted(p.name for p in experiment.directory.iterdir()) == ["config.yml"]  # nothing written
