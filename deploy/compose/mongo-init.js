// SafeGrid: initiate the replica set rs0 and create SafeGrid's database user.
// Run by the compose service mongo-init as root; safe to run again (both steps check first).
const members = [
  { _id: 0, host: "mongo1:27017" },
  { _id: 1, host: "mongo2:27017" },
  { _id: 2, host: "mongo3:27017" },
];
try {
  rs.status();
  print("rs0 already initiated");
} catch (e) {
  rs.initiate({ _id: "rs0", members: members });
  print("rs0 initiated");
}
// Wait for a primary: createUser needs one.
for (let i = 0; i < 60 && !db.hello().isWritablePrimary; i++) {
  sleep(1000);
}
const admin = db.getSiblingDB("admin");
if (admin.getUser("safegrid") === null) {
  admin.createUser({
    user: "safegrid",
    pwd: process.env.MONGO_APP_PASSWORD,
    roles: [{ role: "readWrite", db: "safegrid" }],
  });
  print("user safegrid created");
}
