"""AlexNet as in the paper (grouped convolutions: the two-GPU split; no local response normalisation), at small
widths by default; ``FULL`` holds the paper's widths. The first convolution pads by 2 as torchvision's does, so a
224x224 input gives the paper's 55x55 first feature map (the paper's 227x227 unpadded)."""
INPUT_SHAPE = (2, 3, 127, 127)

FULL = {"alexnet": dict(widths=(96, 256, 384, 384, 256), hidden=4096, num_classes=1000)}
FULL_INPUT_SHAPE = (1, 3, 224, 224)


def build(nn, F, T, widths=(24, 64, 96, 96, 64), hidden=128, num_classes=10):
    class AlexNet(nn.Module):
        def __init__(self, dropout=0.5):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, widths[0], kernel_size=11, stride=4, padding=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(widths[0], widths[1], kernel_size=5, padding=2, groups=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(widths[1], widths[2], kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(widths[2], widths[3], kernel_size=3, padding=1, groups=2),
                nn.ReLU(inplace=True),
                nn.Conv2d(widths[3], widths[4], kernel_size=3, padding=1, groups=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout),
                nn.Linear(widths[4] * 6 * 6, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(p=dropout),
                nn.Linear(hidden, hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, num_classes),
            )

        def forward(self, x):
            x = self.avgpool(self.features(x))
            x = x.reshape(x.shape[0], -1)                         # torch: x.view(x.size(0), -1)
            return self.classifier(x)

    return AlexNet()
