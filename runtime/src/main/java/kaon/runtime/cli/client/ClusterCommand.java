package kaon.runtime.cli.client;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import kaon.protocol.v1.Device;
import kaon.protocol.v1.ListDevicesRequest;
import kaon.protocol.v1.ListDevicesResponse;
import kaon.protocol.v1.ListMembersRequest;
import kaon.protocol.v1.ListMembersResponse;
import kaon.protocol.v1.Member;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code kaon cluster}: the cluster's members, then every device and the worker that owns it. */
@Command(
    name = "cluster",
    mixinStandardHelpOptions = true,
    description = "Show the members of a running Kaon cluster and their devices.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:success",
      "2:invalid command line",
      "3:Kaon cannot be reached, refused the token, or did not answer"
    })
final class ClusterCommand implements Callable<Integer> {

  @Spec CommandSpec command;

  @Mixin ConnectionOptions connection;

  @Mixin OutputFormat output;

  @Override
  public Integer call() {
    PrintWriter out = command.commandLine().getOut();
    return connection.run(api -> {
      ListMembersResponse members = api.call(api.cluster().listMembers(), ListMembersRequest.getDefaultInstance());
      ListDevicesResponse devices = api.call(api.cluster().listDevices(), ListDevicesRequest.getDefaultInstance());
      if (!output.table()) {
        java.util.Map<String, com.google.protobuf.MessageOrBuilder> both = new java.util.LinkedHashMap<>();
        both.put("members", members);
        both.put("devices", devices);
        output.print(both, out);
        return 0;
      }
      Table memberTable = new Table("ADDRESS", "STATUS", "ROLES", "REACHABLE");
      for (Member member : members.getMembersList()) {
        memberTable.row(member.getAddress(), member.getStatus(),
            member.getRolesCount() == 0 ? "-" : String.join(",", member.getRolesList()),
            member.getReachable() ? "yes" : "no");
      }
      memberTable.print(out);
      out.println();
      if (devices.getDevicesCount() == 0) {
        out.println("No devices.");
        return 0;
      }
      Table deviceTable = new Table("NODE", "DEVICE", "KIND", "THREADS", "OWNER");
      for (Device device : devices.getDevicesList()) {
        deviceTable.row(device.getNode(), device.getId(), device.getDevice(), device.getThreads(),
            device.getOwner().isEmpty() ? "-" : device.getOwner());
      }
      deviceTable.print(out);
      return 0;
    });
  }
}
