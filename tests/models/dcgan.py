"""DCGAN generator: transposed convolutions from a latent vector to a 64x64 image, at small widths by default;
``FULL`` holds the keyword arguments of the DCGAN paper's (and the PyTorch tutorial's) generator."""
INPUT_SHAPE = (2, 16, 1, 1)

FULL = {"dcgan": dict(nz=100, ngf=64, nc=3)}
FULL_INPUT_SHAPE = (1, 100, 1, 1)


def build(nn, F, T, nz=16, ngf=8, nc=3):
    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
                nn.BatchNorm2d(ngf * 8),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 4),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
                nn.Tanh(),
            )
            for m in self.modules():
                if isinstance(m, nn.ConvTranspose2d):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.normal_(m.weight, 1.0, 0.02)
                    nn.init.constant_(m.bias, 0)

        def forward(self, input):
            return self.main(input)

    return Generator()
