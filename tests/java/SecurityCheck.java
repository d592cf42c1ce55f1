// Kafka's own Java client as an independent peer of the harness's TLS and
// SASL listeners, for tests/test_harness.py.  Run with the JDK's single-file
// source launcher on a Kafka classpath:
//
//   java -cp <kafka classpath> SecurityCheck.java CONFIG...
//
// Each CONFIG is a client properties file (bootstrap.servers,
// security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.*,
// ...).  For each, in one JVM, an Admin client describes the cluster and
// one line is printed:
//
//   ok <file name> <node id>@<host>:<port> ...
//   error <file name> <exception class>: <message>
import java.io.File;
import java.io.FileReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.Node;

public class SecurityCheck {
    public static void main(String[] args) throws Exception {
        for (String path : args) {
            Properties p = new Properties();
            try (FileReader r = new FileReader(path, StandardCharsets.UTF_8)) {
                p.load(r);
            }
            String name = new File(path).getName();
            Admin admin = null;
            try {
                admin = Admin.create(p);
                Collection<Node> nodes =
                    admin.describeCluster().nodes().get(60, TimeUnit.SECONDS);
                StringBuilder sb = new StringBuilder("ok " + name);
                for (Node n : nodes) {
                    sb.append(" ").append(n.id()).append("@").append(n.host())
                      .append(":").append(n.port());
                }
                System.out.println(sb);
            } catch (ExecutionException e) {
                System.out.println(error(name, e.getCause()));
            } catch (Exception e) {
                System.out.println(error(name, e));
            } finally {
                if (admin != null) {
                    admin.close(Duration.ofSeconds(5));
                }
            }
            System.out.flush();
        }
    }

    private static String error(String name, Throwable t) {
        String msg = String.valueOf(t.getMessage()).replace('\n', ' ');
        return "error " + name + " " + t.getClass().getSimpleName() + ": " + msg;
    }
}
