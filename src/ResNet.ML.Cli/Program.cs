Console.WriteLine("resnet: the command-line tool of ResNet.ML (commands arrive with the trainer issue).");
return 0;
