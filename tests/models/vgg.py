"""VGG-style stack of 3x3 convolution blocks with batch norm, at small widths by default; ``FULL`` holds the
keyword arguments of torchvision's VGG-11 with batch norm (vgg11_bn)."""
INPUT_SHAPE = (2, 3, 32, 32)

CONFIG = [8, "M", 16, "M", 32, 32, "M", 64, 64, "M"]
FULL = {"vgg11": dict(config=[64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], pool_size=7,
                      hidden=4096, num_classes=1000)}
FULL_INPUT_SHAPE = (1, 3, 224, 224)


def build(nn, F, T, config=CONFIG, pool_size=2, hidden=64, num_classes=10):
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
        return nn.Sequential(*layers), in_channels

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, channels = make_layers(config)
            self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
            self.classifier = nn.Sequential(
                nn.Linear(channels * pool_size * pool_size, hidden),
                nn.ReLU(True),
                nn.Dropout(),
                nn.Linear(hidden, hidden),
                nn.ReLU(True),
                nn.Dropout(),
                nn.Linear(hidden, num_classes),
            )

        def forward(self, x):
            x = self.avgpool(self.features(x))
            n = x.shape[0]                                        # torch: x.size(0)
            x = x.reshape(n, -1)                                  # torch: x.view(n, -1)
            return self.classifier(x)

    return VGG()
