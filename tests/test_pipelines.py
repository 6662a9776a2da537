"""pyannote.audio pipelines with a checkpoint trained by the plugin

- pyannote.audio's SpeakerDiarization pipeline, end to end on pyannote's
  bundled sample.wav, with a segmentation model trained offline here;
- oracle DER: reference turns clustered with the plugin's embeddings.
"""

import json
import re

import pytest
from pyannote.audio import Model
from pyannote.core import Annotation
from pyannote.database.util import load_rttm
from pyannote.metrics.detection import DetectionPrecisionRecallFMeasure
from pyannote.metrics.diarization import DiarizationErrorRate

from pyannote_embloss.inference.loading import load_model
from pyannote_embloss.pipelines import SpeakerDiarization, oracle_der, sample_file, train_segmentation
from pyannote_embloss.pipelines.conversations import make_conversations
from pyannote_embloss.data.protocols import get_protocol

from helpers import PROTOCOL, run_cli


@pytest.fixture(scope="module")
def segmentation(tmp_path_factory):
    """A small PyanNet (powerset) trained on pyannote.audio's sample: 25 steps"""
    path = tmp_path_factory.mktemp("segmentation") / "segmentation.ckpt"
    return train_segmentation(path, batch_size=8, batches_per_epoch=5, max_epochs=5)


def test_diarization_pipeline_on_sample(checkpoint, segmentation):
    pipeline = SpeakerDiarization(embedding=checkpoint, segmentation=segmentation, segmentation_step=0.25)
    # instantiated: runs out of the box, with agglomerative clustering and no PLDA
    parameters = pipeline.parameters(instantiated=True)
    assert parameters["clustering"]["method"] == "average"
    assert type(pipeline.clustering).__name__ == "AgglomerativeClustering"

    sample = sample_file()
    reference = sample["annotation"]
    output = pipeline({"uri": "sample", "audio": sample["audio"]})
    diarization = output.speaker_diarization
    assert isinstance(diarization, Annotation) and diarization.uri == "sample"
    labels = diarization.labels()
    assert len(labels) >= 1 and all(re.fullmatch(r"SPEAKER_\d\d", label) for label in labels)
    assert output.speaker_embeddings.shape == (len(labels), 128)

    # the output covers the reference speech (and little else)
    detection = DetectionPrecisionRecallFMeasure()
    detection(reference, diarization, uem=sample["annotated"])
    precision, recall, _ = detection.compute_metrics()
    assert recall > 0.8 and precision > 0.8, (precision, recall)

    der = DiarizationErrorRate()(reference, diarization, uem=sample["annotated"])
    two = pipeline({"uri": "sample", "audio": sample["audio"]}, num_speakers=2).speaker_diarization
    assert len(two.labels()) == 2
    der_two = DiarizationErrorRate()(reference, two, uem=sample["annotated"])
    print(
        f"pipeline on sample.wav: {len(labels)} speaker(s), DER {100 * der:.1f} %; "
        f"with num_speakers=2, DER {100 * der_two:.1f} %; speech precision {precision:.3f} recall {recall:.3f}"
    )


def test_pipeline_accepts_model_instances_and_refuses_vbx(checkpoint, segmentation, tmp_path):
    pipeline = SpeakerDiarization(embedding=load_model(checkpoint), segmentation=Model.from_pretrained(segmentation))
    assert pipeline._embedding.dimension == 128
    with pytest.raises(ValueError, match="VBxClustering needs a PLDA"):
        SpeakerDiarization(embedding=checkpoint, segmentation=segmentation, clustering="VBxClustering")
    with pytest.raises(FileNotFoundError, match="segmentation-3.0"):
        SpeakerDiarization(embedding=checkpoint, segmentation=str(tmp_path / "pytorch_model.bin"))


def test_diarize_command_writes_rttm(checkpoint, segmentation, tmp_path):
    rttm = tmp_path / "sample.rttm"
    result = run_cli(
        "diarize", checkpoint, sample_file()["audio"],
        "--segmentation", segmentation, "--num-speakers", "2", "--output", rttm,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    annotation = load_rttm(rttm)["sample"]
    assert len(annotation.labels()) == 2 and annotation.get_timeline().duration() > 15.0


def test_oracle_der_on_sample(checkpoint, tmp_path):
    output = tmp_path / "oracle.json"
    result = run_cli("oracle-der", checkpoint, "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    report = json.loads(output.read_text())
    assert report["num_turns"] == 10 and report["files"][0]["num_speakers"] == 2
    # single cluster: one speaker's speech (not overlapped) is confused, 11.85 s out of 24.35 s
    assert report["baseline_der"] == pytest.approx(0.4867, abs=1e-3)
    assert 0.0 <= report["der"] <= 1.0
    assert f"oracle DER = {100 * report['der']:.1f} %" in result.stdout


def test_oracle_der_on_unseen_speakers_is_well_below_single_cluster(checkpoint, speechocean762_yml, tmp_path):
    # in-domain conversations: 3 SpeechOcean762 test speakers (never seen in training) x 3 turns
    utterances = [
        (file["annotation"].labels()[0], str(file["audio"]))
        for file in get_protocol(PROTOCOL, database_yml=speechocean762_yml).test()
    ]
    files = make_conversations(utterances, tmp_path, num_conversations=6, num_speakers=3, turns_per_speaker=3)
    assert all(len(file["annotation"].labels()) == 3 for file in files)
    report = oracle_der(load_model(checkpoint), files)
    print(
        f"oracle DER on 6 SpeechOcean762 conversations: {100 * report['der']:.1f} % "
        f"(single cluster: {100 * report['baseline_der']:.1f} %)"
    )
    assert report["num_turns"] == 6 * 9
    assert report["baseline_der"] > 0.5
    assert report["der"] < 0.75 * report["baseline_der"]
