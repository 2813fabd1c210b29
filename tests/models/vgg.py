"""VGG-style stack of 3x3 convolution blocks with batch norm, at small widths."""
INPUT_SHAPE = (2, 3, 32, 32)

CONFIG = [8, "M", 16, "M", 32, 32, "M", 64, 64, "M"]


def build(nn, F, T, num_classes=10):
    def make_layers(cfg):
        layers = []
        in_channels = 3
        for v in cfg:
            if v == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
                layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                in_channels = v
        return nn.Sequential(*layers)

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = make_layers(CONFIG)
            self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
            self.classifier = nn.Sequential(
                nn.Linear(64 * 2 * 2, 64),
                nn.ReLU(True),
                nn.Dropout(),
                nn.Linear(64, 64),
                nn.ReLU(True),
                nn.Dropout(),
                nn.Linear(64, num_classes),
            )

        def forward(self, x):
            x = self.avgpool(self.features(x))
            n = x.shape[0]                                        # torch: x.size(0)
            x = x.reshape(n, -1)                                  # torch: x.view(n, -1)
            return self.classifier(x)

    return VGG()
