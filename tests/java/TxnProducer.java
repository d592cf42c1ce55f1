// A transactional producer built on Kafka's own client (kafka-clients from
// the harness's Maven classpath), for tests/test_transactions.py.  Run with
// the JDK's single-file source launcher:
//
//   java -cp <kafka tools classpath> TxnProducer.java BOOTSTRAP TOPIC
//
// It reads commands from stdin, one per line, and answers each with a line
// "ok <detail>" on stdout once done (or "error <message>" and exits 1):
//
//   begin                      begin a transaction
//   send PARTITION VALUE...    send one record per VALUE (key = value)
//   flush                      wait until every record sent is written
//   commit | abort             end the transaction
//   quit                       close the producer and exit
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class TxnProducer {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("transactional.id", "pkc-test-" + args[1]);
        p.put("enable.idempotence", "true");
        p.put("acks", "all");
        p.put("linger.ms", "0");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        String topic = args[1];
        BufferedReader in = new BufferedReader(
            new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            System.out.println("ok ready");
            System.out.flush();
            String line;
            while ((line = in.readLine()) != null) {
                String[] w = line.trim().split(" ");
                String detail = w[0];
                try {
                    switch (w[0]) {
                    case "begin":
                        producer.beginTransaction();
                        break;
                    case "send": {
                        int partition = Integer.parseInt(w[1]);
                        for (int i = 2; i < w.length; i++) {
                            byte[] v = w[i].getBytes(StandardCharsets.UTF_8);
                            producer.send(new ProducerRecord<>(topic, partition, v, v)).get();
                        }
                        detail = "sent " + (w.length - 2);
                        break;
                    }
                    case "flush":
                        producer.flush();
                        break;
                    case "commit":
                        producer.commitTransaction();
                        break;
                    case "abort":
                        producer.abortTransaction();
                        break;
                    case "quit":
                        System.out.println("ok quit");
                        System.out.flush();
                        return;
                    default:
                        throw new IllegalArgumentException("unknown command " + w[0]);
                    }
                } catch (Exception e) {
                    System.out.println("error " + e);
                    System.out.flush();
                    System.exit(1);
                }
                System.out.println("ok " + detail);
                System.out.flush();
            }
        }
    }
}
