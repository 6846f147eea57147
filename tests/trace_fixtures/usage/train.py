"""Usage fixture: argparse defaults, call sites in main(), `.double()`, example tensors."""
import argparse

import torch

import models


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--rnn-type", default="LSTM", choices=["LSTM", "GRU"])
    parser.add_argument("--rows", type=int, default=28)
    args = parser.parse_args()
    model = models.Net(args.hidden, 10)
    reader = models.RowReader(args.rnn_type, args.rows, 64)
    images = torch.randn(64, 28, 28)
    reader(images)
    seq = models.Sequence()
    seq.double()
    return model


if __name__ == "__main__":
    main()
