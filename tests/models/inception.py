"""GoogLeNet-style network of inception blocks (1x1 reductions before 3x3 and 5x5, pool projections) at small
widths by default; ``FULL`` holds the keyword arguments of GoogLeNet as in the paper (5x5 convolutions in the third
branch, where torchvision's uses 3x3; no auxiliary classifiers)."""
INPUT_SHAPE = (2, 3, 40, 40)

# the stem: convolutions (out channels, kernel size, stride; padding kernel // 2) and 3x3/2 max pools ("M")
STEM = ((16, 7, 2), "M", (24, 3, 1))
# then inception blocks (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj[, "avg"]) in stages 3, 4, ...
# separated by 3x3/2 max pools ("M")
BLOCKS = ((8, 12, 16, 4, 8, 8), (16, 16, 24, 4, 12, 12, "avg"), "M", (24, 12, 26, 4, 6, 8))
FULL = {"inception": dict(
    stem=((64, 7, 2), "M", (64, 1, 1), (192, 3, 1), "M"),
    blocks=((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "M",
            (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
            (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128), "M",
            (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
    num_classes=1000)}
FULL_INPUT_SHAPE = (1, 3, 224, 224)


def build(nn, F, T, stem=STEM, blocks=BLOCKS, num_classes=10):
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
        """Children named as torchvision's: conv1, maxpool1, conv2, ..., inception3a, ..., maxpool3, inception4a."""

        def __init__(self):
            super().__init__()
            self.order = []
            channels, convs, pools = 3, 0, 0
            for item in stem:
                if item == "M":
                    pools += 1
                    self._add(f"maxpool{pools}", nn.MaxPool2d(3, stride=2, ceil_mode=True))
                else:
                    out_channels, kernel_size, stride = item
                    convs += 1
                    self._add(f"conv{convs}", BasicConv2d(channels, out_channels, kernel_size=kernel_size,
                                                          stride=stride, padding=kernel_size // 2))
                    channels = out_channels
            stage, letter = 3, "a"
            for item in blocks:
                if item == "M":
                    self._add(f"maxpool{stage}", nn.MaxPool2d(3, stride=2, ceil_mode=True))
                    stage, letter = stage + 1, "a"
                else:
                    self._add(f"inception{stage}{letter}", Inception(channels, *item))
                    channels = item[0] + item[2] + item[4] + item[5]
                    letter = chr(ord(letter) + 1)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.dropout = nn.Dropout(0.2)
            self.fc = nn.Linear(channels, num_classes)

        def _add(self, name, module):
            setattr(self, name, module)
            self.order.append(name)

        def forward(self, x):
            for name in self.order:
                x = getattr(self, name)(x)
            x = T.flatten(self.avgpool(x), 1)
            return self.fc(self.dropout(x))

    return GoogLeNet()
