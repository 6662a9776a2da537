"""SincTDNN: architecture, frame counts, pooling, short audio"""

import pytest
import torch

from pyannote_embloss.models import SincTDNN, get_architecture


def conv_out(n, kernel, stride=1, dilation=1):
    return (n - dilation * (kernel - 1) - 1) // stride + 1


def expected_frames(num_samples, stride=5):
    # SincNet: sinc conv (251 taps, stride) + 3x max-pool 3, two Conv1d k5 between
    n = conv_out(num_samples, 251, stride)
    n = conv_out(n, 3, 3)
    n = conv_out(n, 5)
    n = conv_out(n, 3, 3)
    n = conv_out(n, 5)
    n = conv_out(n, 3, 3)
    sincnet = n
    # TDNN: kernels 5, 3, 3, 1, 1 with dilations 1, 2, 3, 1, 1
    for k, d in zip([5, 3, 3, 1, 1], [1, 2, 3, 1, 1]):
        n = conv_out(n, k, dilation=d)
    return sincnet, n


@pytest.mark.parametrize("stride", [5, 10])
def test_frame_counts_of_a_3s_chunk(stride):
    model = SincTDNN(stride=stride).eval()
    x = torch.randn(2, 1, 48000)
    sincnet_frames, tdnn_frames = expected_frames(48000, stride)
    if stride == 5:
        # by hand: 9550 -> 3183 -> 3179 -> 1059 -> 1055 -> 351 ; 347 -> 343 -> 337
        assert (sincnet_frames, tdnn_frames) == (351, 337)
    assert model.sincnet(x).shape == (2, 60, sincnet_frames)
    outputs = model.sincnet(x)
    for layer in model.tdnns:
        outputs = layer(outputs)
    assert outputs.shape == (2, 1500, tdnn_frames)
    assert model.num_frames(48000) == tdnn_frames
    with torch.no_grad():
        assert model(x).shape == (2, 512)


def test_architecture_matches_the_paper():
    model = SincTDNN()
    assert model.dimension == 512
    assert model.sincnet.stride == 5
    sinc = model.sincnet.conv1d[0].filterbank
    assert sinc.n_filters == 80 and sinc.kernel_size == 251
    convs = [m for m in model.tdnns if isinstance(m, torch.nn.Conv1d)]
    assert [c.out_channels for c in convs] == [512, 512, 512, 512, 1500]
    assert [c.kernel_size[0] for c in convs] == [5, 3, 3, 1, 1]
    assert [c.dilation[0] for c in convs] == [1, 2, 3, 1, 1]
    assert model.embedding.in_features == 3000 and model.embedding.out_features == 512


def test_hyperparameters_are_saved():
    model = SincTDNN(stride=10, channels=[64, 64, 64, 64, 128], dimension=32)
    assert model.hparams.stride == 10
    assert list(model.hparams.channels) == [64, 64, 64, 64, 128]
    assert model.hparams.dimension == 32 and model.dimension == 32
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 1, 16000)).shape == (1, 32)


def test_weighted_statistics_pooling():
    model = SincTDNN(stride=10).eval()
    x = torch.randn(3, 1, 32000)
    num_frames = model.num_frames(32000)
    half = num_frames // 2
    with torch.no_grad():
        features = model.sincnet(x)
        for layer in model.tdnns:
            features = layer(features)
        first_half = features[..., :half]
        expected = model.embedding(torch.cat([first_half.mean(-1), first_half.std(-1)], dim=-1))
        plain = model(x)
        uniform = model(x, weights=torch.ones(3, num_frames))
        mask = torch.zeros(3, num_frames)
        mask[:, :half] = 1.0
        masked = model(x, weights=mask)
    torch.testing.assert_close(plain, uniform, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(masked, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(masked, plain, rtol=1e-3, atol=1e-6)


def test_short_audio_is_embedded():
    model = SincTDNN().eval()
    assert model.min_num_samples > 1600  # 0.1 s is shorter than the receptive field
    with torch.no_grad():
        embedding = model(torch.randn(1, 1, 1600))
    assert embedding.shape == (1, 512) and torch.isfinite(embedding).all()


def test_empty_audio_is_a_clear_error():
    with pytest.raises(ValueError, match="empty audio"):
        SincTDNN()(torch.zeros(1, 1, 0))


def test_unknown_architecture_lists_known_ones():
    assert get_architecture("SincTDNN") is SincTDNN
    with pytest.raises(ValueError, match="Known architectures: ECAPATDNN, LogMelStatistics, SincTDNN, WeSpeakerResNet34"):
        get_architecture("ResNet")


def test_pyannote_wespeaker_class_path_builds_the_plugin_subclass():
    from pyannote.audio.models.embedding import WeSpeakerResNet152
    from pyannote.audio.models.embedding.wespeaker import WeSpeakerResNet34 as PyannoteWeSpeakerResNet34

    from pyannote_embloss.models import WeSpeakerResNet34

    for name in ("WeSpeakerResNet34", "pyannote.audio.models.embedding.WeSpeakerResNet34",
                 "pyannote.audio.models.embedding.wespeaker.WeSpeakerResNet34"):
        assert get_architecture(name) is WeSpeakerResNet34
    assert issubclass(WeSpeakerResNet34, PyannoteWeSpeakerResNet34)
    # the same weights, key for key: each class loads the other's
    assert WeSpeakerResNet34().state_dict().keys() == PyannoteWeSpeakerResNet34().state_dict().keys()
    # every other pyannote.audio class stays itself
    assert get_architecture("pyannote.audio.models.embedding.WeSpeakerResNet152") is WeSpeakerResNet152


def test_ecapa_tdnn_matches_the_paper():
    from pyannote_embloss.models import ECAPATDNN

    # Desplanques et al. (2020), table 1: 6.2 M parameters with C = 512, 14.7 M with C = 1024
    for channels, millions in ((512, 6.2), (1024, 14.7)):
        model = ECAPATDNN(channels=channels)
        assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions
    assert model.dimension == 192 and model.filterbank.n_mels == 80
    assert [block.layers[1].convs[0][0].dilation[0] for block in model.blocks] == [2, 3, 4]
    assert len(model.blocks[0].layers[1].convs) == 7  # Res2Net scale 8
    with pytest.raises(ValueError, match="multiple of the Res2Net scale"):
        ECAPATDNN(channels=100)


def test_ecapa_tdnn_frame_weights():
    from pyannote_embloss.models import ECAPATDNN

    torch.manual_seed(0)
    model = ECAPATDNN(channels=64, aggregation_channels=192, dimension=32).eval()
    x = torch.randn(3, 1, 32000)
    num_frames = model.num_frames(32000)
    mask = torch.zeros(3, num_frames)
    mask[:, : num_frames // 2] = 1.0
    with torch.no_grad():
        plain = model(x)
        uniform = model(x, weights=torch.ones(3, num_frames))
        masked = model(x, weights=mask)
        silent = model(x, weights=torch.zeros(3, num_frames))
        speakers = model(x, weights=torch.stack([mask, 1.0 - mask], dim=1))
    assert plain.shape == (3, 32) and speakers.shape == (3, 2, 32)
    torch.testing.assert_close(uniform, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(speakers[:, 0], masked, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(masked, plain, rtol=1e-3, atol=1e-6)
    assert torch.isfinite(silent).all()
