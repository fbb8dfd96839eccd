import pytest
import torch

from rnnlab.models import build_model, count_parameters


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("steps,features", [(28, 28), (784, 1)])
def test_shapes_and_last_step(name, steps, features):
    torch.manual_seed(0)
    model = build_model(name, features, hidden_size=16, num_layers=2).eval()
    x = torch.randn(3, steps, features)
    logits = model(x)
    assert logits.shape == (3, 10)
    per_step = model.logits_per_step(x)
    assert per_step.shape == (3, steps, 10)
    torch.testing.assert_close(per_step[:, -1], logits)


def test_sheet_models_match_the_sheet():
    rnn, lstm = build_model("rnn", num_layers=1), build_model("lstm", num_layers=2)
    assert isinstance(rnn.recurrent, torch.nn.RNN) and rnn.recurrent.num_layers == 1
    assert isinstance(lstm.recurrent, torch.nn.LSTM) and lstm.recurrent.num_layers == 2
    # The sheet's RNN: out[:, -1, :] into the linear layer, which is what hn[-1] gives for one layer.
    x = torch.randn(2, 28, 28)
    out, _ = rnn.recurrent(x)
    torch.testing.assert_close(rnn(x), rnn.fc(out[:, -1, :]))
    # Parameter counts of the sheet's models: nn.RNN(28,128)+Linear and 2-layer nn.LSTM(28,128)+Linear.
    assert count_parameters(rnn) == (28 * 128 + 128 * 128 + 2 * 128) + (128 * 10 + 10)
    assert count_parameters(lstm) == 4 * (28 * 128 + 128 * 128 + 2 * 128) + 4 * (2 * 128 * 128 + 2 * 128) + 1290
