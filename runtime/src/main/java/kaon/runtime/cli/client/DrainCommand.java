package kaon.runtime.cli.client;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import kaon.protocol.v1.DrainNodeRequest;
import kaon.protocol.v1.DrainNodeResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kaon drain NODE}: the node leaves the cluster gracefully; its jobs' coordinators and
 * workers move to the others first. What a rolling upgrade does to each node before replacing it.
 */
@Command(
    name = "drain",
    mixinStandardHelpOptions = true,
    description = "Make a node leave the cluster gracefully (its work moves to the other nodes first).",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:the node is leaving",
      "1:no member has that address",
      "2:invalid command line",
      "3:Kaon cannot be reached, refused the token, or did not answer"
    })
final class DrainCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Parameters(paramLabel = "NODE", description = "The member's address as `kaon cluster` lists it (pekko://...).")
  String address;

  @Override
  public Integer call() {
    PrintWriter out = command.commandLine().getOut();
    return connection.run(api -> {
      DrainNodeResponse drained = api.call(api.cluster().drainNode(), DrainNodeRequest.newBuilder().setAddress(address).build());
      out.println(drained.getAddress() + ": " + drained.getStatus()
          + " (its jobs move to the other nodes; `kaon cluster` shows when it is gone)");
      return 0;
    });
  }
}
