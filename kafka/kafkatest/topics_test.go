package kafkatest

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestNewTopicAndReaders(t *testing.T) {
	addrs := Start(t).Addrs()
	topic := NewTopic(t, addrs, "kafkatest", 2)
	if !strings.HasPrefix(topic, "kafkatest-") || NewTopic(t, addrs, "kafkatest", 1) == topic {
		t.Fatalf("topic name %q is not the prefix plus a unique suffix", topic)
	}
	cfg := clientConfig()
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	partitions := map[int32]bool{}
	for i := range 6 {
		part, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint("k", i)), Value: sarama.StringEncoder(fmt.Sprint("v", i))})
		if err != nil {
			t.Fatal(err)
		}
		partitions[part] = true
	}
	if len(partitions) != 2 {
		t.Fatalf("records went to partitions %v, want both of the topic's two", partitions)
	}

	recs := ReadTopicExactly(t, addrs, topic, 6, time.Minute)
	var values []string
	for _, m := range recs {
		values = append(values, string(m.Value))
	}
	sort.Strings(values)
	if got := strings.Join(values, ","); got != "v0,v1,v2,v3,v4,v5" {
		t.Fatalf("read %s", got)
	}
	if got := ReadTopic(t, addrs, topic, 2, time.Minute); len(got) != 2 {
		t.Fatalf("ReadTopic(2) returned %d records", len(got))
	}
	m := FindRecord(t, addrs, topic, time.Minute, func(m *sarama.ConsumerMessage) bool { return string(m.Key) == "k4" })
	if string(m.Value) != "v4" {
		t.Fatalf("FindRecord(k4) = %s", m.Value)
	}

	// A reader waits for a topic that does not exist yet; the broker creates it on first use.
	sent := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic + "-later", Value: sarama.StringEncoder("late")})
		sent <- err
	}()
	late := ReadTopic(t, addrs, topic+"-later", 1, time.Minute)[0]
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if string(late.Value) != "late" {
		t.Fatalf("read %q from the later topic", late.Value)
	}
}

// The broker's temporary files (lz4-java's native library, unpacked when it reads an
// LZ4-compressed batch) stay in its own directory, which the test's cleanup removes, and not in
// the machine's /tmp, where a killed broker would leave them for good.
func TestBrokerTemporaryFilesStayInItsDirectory(t *testing.T) {
	b := Start(t)
	addrs := b.Addrs()
	topic := NewTopic(t, addrs, "kafkatest-lz4", 1)
	cfg := clientConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.Compression = sarama.CompressionLZ4
	p, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(strings.Repeat("lz4 ", 1000))}); err != nil {
		t.Fatal(err)
	}
	var found []string
	_ = filepath.WalkDir(b.Dir(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "liblz4-java") {
			found = append(found, path)
		}
		return nil
	})
	if len(found) == 0 {
		t.Fatalf("lz4-java's native library is not under the broker's directory %s (it went to the JVM's default temporary directory)", b.Dir())
	}
}
