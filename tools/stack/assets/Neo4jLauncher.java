// The local Neo4j of docstream's service stack: an embedded DBMS with the Bolt
// connector switched on (it is off by default when embedded), auth off, and a
// small page cache so it fits beside Kafka on a 2-core development machine.
//
// Usage: java -cp "<neo4j jars>/*:<this class>" Neo4jLauncher HOME_DIR HOST PORT
//            [--tls-cert CERT_FILE --tls-key KEY_FILE] [--password-file FILE]
// With --tls-cert and --tls-key, Bolt requires TLS with that certificate and
// key (PEM, the key in unencrypted PKCS#8). With --password-file, auth is on
// and the built-in user neo4j has the password that file holds: a path rather
// than the password itself, which `ps` would show to every user.
// It prints a line when it is started and shuts the DBMS down on SIGTERM.
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.configuration.ssl.ClientAuth;
import org.neo4j.configuration.ssl.SslPolicyConfig;
import org.neo4j.configuration.ssl.SslPolicyScope;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;

public final class Neo4jLauncher {
    private static final String USAGE = "usage: Neo4jLauncher HOME_DIR HOST PORT "
            + "[--tls-cert CERT_FILE --tls-key KEY_FILE] [--password-file FILE]";
    private static final Set<String> OPTIONS = Set.of("--tls-cert", "--tls-key", "--password-file");

    public static void main(String[] args) throws InterruptedException, IOException {
        Map<String, String> options = options(args);
        Path home = Path.of(args[0]).toAbsolutePath();
        SocketAddress bolt = new SocketAddress(args[1], Integer.parseInt(args[2]));
        long pageCache = ByteUnit.mebiBytes(Long.getLong("docstream.neo4j.pagecache.mb", 256L));
        String password = options.containsKey("--password-file")
                ? readPassword(Path.of(options.get("--password-file")))
                : null;
        boolean tls = options.containsKey("--tls-cert");

        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, bolt)
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, password != null)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pageCache)
                // Bolt waits 5 s for its connections and 5 s more for its threads
                // on shutdown, 10 s a stop even with no client left: a stack that
                // stops on Ctrl-C should take seconds. Clients are gone by then.
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time,
                        Duration.ofSeconds(1))
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time,
                        Duration.ofSeconds(1));
        if (tls) {
            requireTls(builder, Path.of(options.get("--tls-cert")), Path.of(options.get("--tls-key")));
        }
        DatabaseManagementService dbms = builder.build();
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown, "neo4j-shutdown"));
        if (password != null) {
            try {
                setPassword(dbms, password);
            } catch (RuntimeException e) {
                // Neo4j's messages may quote the rejected input: never print it.
                String reason = String.valueOf(e.getMessage()).replace(password, "***");
                System.err.println("setting the password of neo4j failed: " + reason);
                System.exit(1); // runs the shutdown hook
            }
        }
        System.out.println("docstream neo4j started, bolt://" + bolt
                + (tls ? ", TLS required" : "") + (password != null ? ", auth on" : ""));
        Thread.currentThread().join();
    }

    private static Map<String, String> options(String[] args) {
        Map<String, String> options = new HashMap<>();
        boolean valid = args.length >= 3 && (args.length - 3) % 2 == 0;
        for (int i = 3; valid && i < args.length; i += 2) {
            valid = OPTIONS.contains(args[i]) && options.put(args[i], args[i + 1]) == null;
        }
        if (!valid || options.containsKey("--tls-cert") != options.containsKey("--tls-key")) {
            System.err.println(USAGE);
            System.exit(2);
        }
        return options;
    }

    private static String readPassword(Path file) throws IOException {
        String text = Files.readString(file);
        String password = text.endsWith("\n") ? text.substring(0, text.length() - 1) : text;
        if (password.isEmpty()) {
            System.err.println("the password file " + file + " is empty");
            System.exit(2);
        }
        return password;
    }

    // The certificate and key are named by absolute paths, so the policy's base
    // directory is only where Neo4j would look for trusted and revoked client
    // certificates, which it does not ask for (client_auth NONE).
    private static void requireTls(DatabaseManagementServiceBuilder builder, Path cert, Path key) {
        SslPolicyConfig policy = SslPolicyConfig.forScope(SslPolicyScope.BOLT);
        builder.setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.REQUIRED)
                .setConfig(policy.enabled, true)
                .setConfig(policy.base_directory, cert.toAbsolutePath().getParent())
                .setConfig(policy.public_certificate, cert.toAbsolutePath())
                .setConfig(policy.private_key, key.toAbsolutePath())
                .setConfig(policy.client_auth, ClientAuth.NONE);
    }

    // Calls of the embedded API bypass auth, so the launcher may set the built-in
    // user's password, at every start (the file may have changed), with no forced
    // change at first login. Neo4j refuses a "new" password equal to the current
    // one ("Old password and new password cannot be the same"): then there is
    // nothing to do.
    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (RuntimeException e) {
            if (!String.valueOf(e.getMessage()).contains("cannot be the same")) {
                throw e;
            }
        }
    }
}
