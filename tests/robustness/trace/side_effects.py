"""Models whose constructors act on the machine; tracing them must leave no trace (see test_sandbox.py)."""
import os
import signal
import socket
import subprocess

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = int(os.environ.get("NNLINT_TEST_PORT", "9"))


class Writer(nn.Module):
    def __init__(self):
        super().__init__()
        with open(os.path.join(HERE, "written_by_model.txt"), "w") as handle:
            handle.write("constructor ran\n")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class SwallowsErrors(nn.Module):
    def __init__(self):
        super().__init__()
        try:
            open(os.path.join(HERE, "swallowed.txt"), "w").close()
        except Exception:
            pass
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class HomeCache(nn.Module):
    def __init__(self):
        super().__init__()
        cache = os.path.join(os.path.expanduser("~"), ".cache", "side_effects")
        os.makedirs(cache, exist_ok=True)
        with open(os.path.join(cache, "weights.bin"), "wb") as handle:
            handle.write(b"\0" * 16)
        os.makedirs(torch.hub.get_dir(), exist_ok=True)
        torch.save({"w": torch.zeros(2)}, os.path.join(torch.hub.get_dir(), "hub_weights.pt"))
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Downloader(nn.Module):
    def __init__(self):
        super().__init__()
        state = torch.hub.load_state_dict_from_url("https://download.pytorch.org/models/resnet18-f37072fd.pth")
        self.fc = nn.Linear(4, 2)
        self.load_state_dict(state, strict=False)

    def forward(self, x):
        return self.fc(x)


class Connector(nn.Module):
    def __init__(self):
        super().__init__()
        socket.create_connection(("127.0.0.1", PORT), timeout=5).sendall(b"hello")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Spawner(nn.Module):
    def __init__(self):
        super().__init__()
        subprocess.Popen(["sleep", "301"])
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Shell(nn.Module):
    def __init__(self):
        super().__init__()
        os.system("setsid sleep 302 &")
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Forker(nn.Module):
    def __init__(self):
        super().__init__()
        if os.fork() == 0:
            with open(os.path.join(HERE, "forked.txt"), "w") as handle:
                handle.write("child\n")
            os._exit(0)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Killer(nn.Module):
    def __init__(self):
        super().__init__()
        os.kill(os.getppid(), signal.SIGKILL)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Clean(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
