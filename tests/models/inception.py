"""GoogLeNet-style network of inception blocks (1x1 reductions before 3x3 and 5x5, pool projections)."""
INPUT_SHAPE = (2, 3, 40, 40)


def build(nn, F, T, num_classes=10):
    class BasicConv2d(nn.Module):
        def __init__(self, in_channels, out_channels, **kwargs):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
            self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)), inplace=True)

    class Inception(nn.Module):
        def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, pool="max"):
            super().__init__()
            self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
            self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                         BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
            self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                         BasicConv2d(ch5x5red, ch5x5, kernel_size=5, padding=2))
            self.pool = pool
            self.branch4 = BasicConv2d(in_channels, pool_proj, kernel_size=1)

        def forward(self, x):
            if self.pool == "max":
                pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1, ceil_mode=True)
            else:  # Inception-v3's average-pool branch
                pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
            outputs = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(pooled)]
            return T.cat(outputs, 1)

    class GoogLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = BasicConv2d(3, 16, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.conv2 = BasicConv2d(16, 24, kernel_size=3, padding=1)
            self.inception3a = Inception(24, 8, 12, 16, 4, 8, 8)
            self.inception3b = Inception(40, 16, 16, 24, 4, 12, 12, pool="avg")
            self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception4a = Inception(64, 24, 12, 26, 4, 6, 8)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.dropout = nn.Dropout(0.2)
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            x = self.maxpool1(self.conv1(x))
            x = self.conv2(x)
            x = self.maxpool3(self.inception3b(self.inception3a(x)))
            x = self.inception4a(x)
            x = T.flatten(self.avgpool(x), 1)
            return self.fc(self.dropout(x))

    return GoogLeNet()
