package kafkatest

import (
	"strings"
	"syscall"
	"testing"

	"github.com/IBM/sarama"
)

func TestStartAnswersMetadataAndCloseKillsTheProcess(t *testing.T) {
	b := Start(t)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	client, err := sarama.NewClient(b.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if got := len(client.Brokers()); got != 1 {
		t.Fatalf("brokers = %d, want 1", got)
	}
	pid := b.nodes[0].cmd.Process.Pid
	b.Close()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("broker process %d still alive after Close", pid)
	}
	b.Close() // a second Close (t.Cleanup's) is harmless
}

func TestMissingJarsSayWhichTargetInstallsThem(t *testing.T) {
	t.Setenv(LibsEnv, t.TempDir())
	_, _, err := StartMain()
	if err == nil || !strings.Contains(err.Error(), "make kafka-jars") {
		t.Fatalf("error = %v, want it to name `make kafka-jars`", err)
	}
}

func TestStopAndStartBrokerValidateIndex(t *testing.T) {
	b := &Broker{nodes: []*node{{id: 1}}}
	if err := b.StopBroker(1); err == nil {
		t.Error("StopBroker(1) on one node accepted")
	}
	if err := b.StartBroker(-1); err == nil {
		t.Error("StartBroker(-1) accepted")
	}
}
