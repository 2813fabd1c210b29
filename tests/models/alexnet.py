"""AlexNet as in the paper: grouped convolutions (the two-GPU split), at small widths."""
INPUT_SHAPE = (2, 3, 127, 127)


def build(nn, F, T, num_classes=10):
    class AlexNet(nn.Module):
        def __init__(self, dropout=0.5):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 24, kernel_size=11, stride=4, padding=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(24, 64, kernel_size=5, padding=2, groups=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 96, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(96, 96, kernel_size=3, padding=1, groups=2),
                nn.ReLU(inplace=True),
                nn.Conv2d(96, 64, kernel_size=3, padding=1, groups=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout),
                nn.Linear(64 * 6 * 6, 128),
                nn.ReLU(inplace=True),
                nn.Dropout(p=dropout),
                nn.Linear(128, 128),
                nn.ReLU(inplace=True),
                nn.Linear(128, num_classes),
            )

        def forward(self, x):
            x = self.avgpool(self.features(x))
            x = x.reshape(x.shape[0], -1)                         # torch: x.view(x.size(0), -1)
            return self.classifier(x)

    return AlexNet()
