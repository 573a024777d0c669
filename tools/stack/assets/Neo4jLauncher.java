// The local Neo4j of docstream's service stack: an embedded DBMS with the Bolt
// connector switched on (it is off by default when embedded), auth off, and a
// small page cache so it fits beside Kafka on a 2-core development machine.
//
// Usage: java -cp "<neo4j jars>/*:<this class>" Neo4jLauncher HOME_DIR HOST PORT
// It prints a line when it is started and shuts the DBMS down on SIGTERM.
import java.nio.file.Path;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;

public final class Neo4jLauncher {
    public static void main(String[] args) throws InterruptedException {
        if (args.length != 3) {
            System.err.println("usage: Neo4jLauncher HOME_DIR HOST PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        SocketAddress bolt = new SocketAddress(args[1], Integer.parseInt(args[2]));
        long pageCache = ByteUnit.mebiBytes(Long.getLong("docstream.neo4j.pagecache.mb", 256L));

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, bolt)
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pageCache)
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown, "neo4j-shutdown"));
        System.out.println("docstream neo4j started, bolt://" + bolt);
        Thread.currentThread().join();
    }
}
